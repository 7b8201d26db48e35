"""tsr.public_formats: the one list of public layout names, the converters' keys and `tsr convert --from`'s
choices, read by the CLI without torch."""
import subprocess
import sys

import pytest

from tsr.checkpoint.public import CONVERTERS
from tsr.cli import main
from tsr.public_formats import PUBLIC_FORMATS


def test_every_listed_format_has_a_converter_and_no_other():
    assert tuple(CONVERTERS) == PUBLIC_FORMATS == ("textzoom-tsrn", "crnn-pytorch", "aster", "moran", "imdn")


def test_convert_offers_the_list_without_importing_torch(tmp_path, capsys):
    code = ("import sys, tsr.cli, tsr.commands.convert; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    with pytest.raises(SystemExit):
        main(["convert", "--from", "tsrn", "x.pth", "--out", str(tmp_path / "y.pth")])
    assert ("invalid choice: 'tsrn' (choose from 'textzoom-tsrn', 'crnn-pytorch', 'aster', 'moran', 'imdn')"
            in capsys.readouterr().err)
