import pytest

from ccs_core.errors import HeadSpecError
from ccs_core.heads import HeadId, check_heads, layer_heads, parse_heads


def test_parse_variants():
    assert HeadId.parse("L11.H5") == HeadId(11, 5)
    assert HeadId.parse("l3h0") == HeadId(3, 0)
    assert HeadId.parse("L10 H8") == HeadId(10, 8)
    assert str(HeadId(2, 7)) == "L2.H7"


def test_parse_heads_sorted_unique():
    assert parse_heads("L11.H5, L10.H8,L11.H5") == [HeadId(10, 8), HeadId(11, 5)]
    assert parse_heads(["L1.H2", HeadId(0, 1)]) == [HeadId(0, 1), HeadId(1, 2)]


@pytest.mark.parametrize("bad", ["", "11.5", "L11", "H5", "Lx.H1", "L1.H2.H3"])
def test_malformed_names_are_clear(bad):
    with pytest.raises(HeadSpecError, match="L<layer>.H<head>"):
        HeadId.parse(bad)


def test_out_of_range():
    with pytest.raises(HeadSpecError, match="L12.H0"):
        check_heads([HeadId(12, 0)], n_layers=12, n_heads=12)
    with pytest.raises(HeadSpecError, match="layers are 8..11"):
        check_heads([HeadId(3, 0)], n_layers=12, n_heads=12, first_layer=8)
    assert check_heads(layer_heads([10, 11], 12), 12, 12) == layer_heads([10, 11], 12)
