"""The Content-Security-Policy widening a page may ask for (config.middleware.csp_policy):
sources appended per directive, a directive the base lacks starting from default-src, the
nonce in script-src only."""

from config.middleware import csp_policy

BASE = "default-src 'self'; img-src 'self' data:; script-src 'self'; frame-ancestors 'none'"


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split("; "))}


def test_sources_are_appended_to_the_directives_the_base_has():
    policy = directives(csp_policy(BASE, {"script-src": ["https://*.paypal.com"]}))
    assert policy["script-src"] == ["'self'", "https://*.paypal.com"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_a_directive_the_base_lacks_starts_from_default_src():
    policy = directives(csp_policy(BASE, {"frame-src": ["https://*.paypal.com"]}))
    assert policy["frame-src"] == ["'self'", "https://*.paypal.com"]
    assert policy["default-src"] == ["'self'"]


def test_the_nonce_goes_to_script_src_only_and_no_source_twice():
    policy = directives(
        csp_policy(BASE, {"img-src": ["data:", "https://*.paypal.com"]}, nonce="abc123")
    )
    assert policy["script-src"] == ["'self'", "'nonce-abc123'"]
    assert policy["img-src"] == ["'self'", "data:", "https://*.paypal.com"]
    assert not any("nonce" in v for name, vs in policy.items() if name != "script-src" for v in vs)
