"""The live commands' one-line errors."""
from sttr.realtime.cli.errors import cli_error, first_line


def test_an_exception_gives_its_first_line_or_its_repr():
    assert first_line(OSError("port 5555 is in use\nsee --pub")) == "port 5555 is in use"
    assert first_line(KeyError()) == "KeyError()"
    assert first_line("--stride must be >= 1\n(got 0)") == "--stride must be >= 1\n(got 0)"  # a text as it is


def test_cli_error_prints_prog_and_returns_2(capsys):
    assert cli_error("sttr serve", ValueError("bad bundle\ndetails")) == 2
    assert capsys.readouterr().err == "sttr serve: error: bad bundle\n"
