"""The OAuth state of WeChat's snsapi_base step is bound to the buyer's session, the buyer
and the order it was started for; single use and short-lived."""

import pytest

from payments import wechat_oauth
from payments.wechat_oauth import OAuthRefused, state_begin, state_claim

pytestmark = pytest.mark.django_db  # the refusal is worded from the error-code table


def _begin(session, user_id=1, ref="order:CX1"):
    return state_begin(session, user_id=user_id, account="wechatpay", ref=ref, next_url="/o/CX1/")


def test_a_state_is_claimed_once_by_the_same_session_buyer_and_order():
    session = {}
    state = _begin(session)
    pending = state_claim(session, state=state, user_id=1, ref="order:CX1")
    assert (pending.account, pending.next_url) == ("wechatpay", "/o/CX1/")
    with pytest.raises(OAuthRefused):
        state_claim(session, state=state, user_id=1, ref="order:CX1")


def test_a_state_from_another_session_is_refused():
    state = _begin({})
    with pytest.raises(OAuthRefused):
        state_claim({}, state=state, user_id=1, ref="order:CX1")


@pytest.mark.parametrize(("user_id", "ref"), [(2, "order:CX1"), (1, "order:CX2")])
def test_a_state_for_another_buyer_or_order_is_refused(user_id, ref):
    session = {}
    state = _begin(session)
    with pytest.raises(OAuthRefused):
        state_claim(session, state=state, user_id=user_id, ref=ref)


def test_a_stale_state_is_refused(monkeypatch):
    session = {}
    state = _begin(session)
    later = wechat_oauth.time.time() + wechat_oauth.STATE_SECONDS + 1
    monkeypatch.setattr(wechat_oauth.time, "time", lambda: later)
    with pytest.raises(OAuthRefused):
        state_claim(session, state=state, user_id=1, ref="order:CX1")


def test_states_are_wechat_safe_and_unpredictable():
    session = {}
    states = {_begin(session) for _ in range(3)}
    assert len(states) == 3
    assert all(len(s) == 32 and s.isalnum() for s in states)
