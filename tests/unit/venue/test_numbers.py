from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from userstream.venue.numbers import decimal_places, fits_places


def _exact_places(value: Decimal) -> int:
    """Decimals of `value` with trailing zeros dropped, from its digits (no rounding)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0
    places = -exponent
    kept = list(digits)
    while places > 0 and kept and kept[-1] == 0:
        kept.pop()
        places -= 1
    return max(places, 0)


# Values as a step size would make them: an integer count of 10**-k, sometimes with a
# stray digit further down, sometimes with trailing zeros written out.
_VALUES = st.builds(
    lambda count, k, extra, zeros: (
        Decimal(count).scaleb(-k) + Decimal(extra).scaleb(-k - 3)
    ).quantize(Decimal(1).scaleb(-k - 3 - zeros)),
    st.integers(-(10**12), 10**12),
    st.integers(0, 10),
    st.integers(0, 9),
    st.integers(0, 4),
)


@given(_VALUES, st.integers(0, 16))
def test_fits_places_is_decimal_places_within(value: Decimal, places: int) -> None:
    assert fits_places(value, places) == (decimal_places(value) <= places)
    assert fits_places(value, places) == (_exact_places(value) <= places)


@given(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.integers(0, 25),
)
def test_fits_places_agrees_with_decimal_places_on_any_finite_value(
    value: Decimal, places: int
) -> None:
    assert fits_places(value, places) == (decimal_places(value) <= places)


def test_fits_places_examples() -> None:
    assert fits_places(Decimal("1.2300"), 2)
    assert not fits_places(Decimal("1.231"), 2)
    assert fits_places(Decimal("1E+30"), 0)
    assert fits_places(Decimal("-0.000"), 0)
    assert fits_places(Decimal("5E-3"), 3)
    assert not fits_places(Decimal("5E-3"), 2)
    assert fits_places(Decimal("100"), 0)
