"""bench/core/options.py: boolean device options (true/false and their spellings), and the one-line error."""
import pytest

from bench.core.errors import UserError
from bench.core.options import option_flag


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("1", True), ("off", False), (0, False)])
def test_option_flag(value, expected):
    assert option_flag({"copies": value}, "copies", not expected) is expected
    assert option_flag({}, "copies", expected) is expected


def test_option_flag_rejects_other_values():
    with pytest.raises(UserError, match="copies=true or copies=false"):
        option_flag({"copies": "maybe"}, "copies", False)
