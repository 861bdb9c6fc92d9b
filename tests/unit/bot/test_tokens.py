"""One-use button tokens (bot.views.tokens): sealing keeps the value, each seal is a new token, expiry is in it."""

from __future__ import annotations

from bot.views.tokens import CARD_LIFETIME, plain, seal, unseal


def test_seal_and_unseal_keep_the_value_and_make_a_new_token_each_time() -> None:
    value = "teaming print01 on --host hv-a1"
    first, second = seal(value, CARD_LIFETIME, now=1_000_000), seal(value, CARD_LIFETIME, now=1_000_000)
    a, b = unseal(first), unseal(second)
    assert a is not None and b is not None
    assert a.value == b.value == value and a.token != b.token
    assert a.expires_at == 1_000_000 + int(CARD_LIFETIME.total_seconds())
    assert plain(first) == value and plain(value) == value


def test_values_without_a_token_are_not_sealed() -> None:
    for raw in ("", "resume|hv-a1|*", "00000000.x", "zzzzzzzz0123456789abcdef.x", "teaming a on"):
        assert unseal(raw) is None
    assert unseal("0000000a0123456789abcdef.a|b\nc") is not None  # any value, multi-line included
