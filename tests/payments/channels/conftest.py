import pytest

from tests.sftp_simulator import SftpSimulator


@pytest.fixture
def sftp_server(tmp_path):
    """A running SFTP simulator serving ``tmp_path/sftp``; ``publish`` puts a report there."""
    sim = SftpSimulator(tmp_path / "sftp")
    (sim.root / "ppreports" / "outgoing").mkdir(parents=True)
    yield sim
    sim.close()
