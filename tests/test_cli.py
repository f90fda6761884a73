import json
import subprocess
import sys

import pytest

from shufflenet.cli import main

TABLE1 = {1: (142_502_976, 1_531_936), 2: (140_036_512, 1_733_848), 3: (136_500_672, 1_865_728),
          4: (133_251_776, 1_968_344), 8: (136_829_952, 2_434_768)}


@pytest.mark.parametrize("g", [1, 2, 3, 4, 8])
def test_summary_json_gives_table1(g, capsys):
    assert main(["summary", "--groups", str(g), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["conv_macs"] == TABLE1[g][0]
    assert out["totals"]["params"] == TABLE1[g][1]
    assert [s["name"] for s in out["stages"]] == ["stem", "stage2", "stage3", "stage4", "classifier"]
    assert sum(s["macs"] for s in out["stages"][:-1]) == out["totals"]["conv_macs"]
    assert out["stages"][-1]["macs"] == out["totals"]["fc_macs"]
    assert out["config"]["groups"] == g


def test_summary_json_contract_shape(capsys):
    main(["summary", "--groups", "3", "--blocks", "4", "8", "4", "--reduction", "0.25", "--scale", "1.0",
          "--input-size", "224", "--channels", "3", "--classes", "1000", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert out["stages"][1] == {"name": "stage2", "output": [28, 28, 240], "units": 4,
                                "macs": 32_175_360, "params": 39_552}
    assert set(out["totals"]) == {"conv_macs", "fc_macs", "params"}


def test_summary_table_looks_like_table1(capsys):
    main(["summary", "--groups", "8"])
    out = capsys.readouterr().out
    assert "Stage3" in out and "1536" in out and "136,829,952" in out and "= 137 M" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["summary", "--groups", "5"], "groups"),
    (["summary", "--scale", "nan"], "scale"),
    (["summary", "--blocks", "1000", "8", "4"], "blocks[stage2]"),
    (["summary", "--input-size", "100000"], "input_size"),
    (["summary", "--groups", "three"], "invalid int value"),
    (["summary", "--format", "xml"], "invalid choice"),
    (["diagram", "--view", "micro", "--blocks", "1", "1", "1"], "no stride-1 unit"),
    (["nonsense"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "shufflenet", *argv], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_diagram_dot_and_svg(capsys):
    assert main(["diagram", "--view", "micro", "--stage", "2", "--stride", "2"]) == 0
    assert capsys.readouterr().out.startswith("digraph")
    from shufflenet.diagrams import dot_available

    if dot_available():
        assert main(["diagram", "--view", "full", "--stage", "4", "--format", "svg"]) == 0
        assert "<svg" in capsys.readouterr().out


def test_no_shuffle_is_the_same_network_without_the_shuffle(capsys):
    assert main(["summary", "--groups", "8", "--format", "json"]) == 0
    shuffled = json.loads(capsys.readouterr().out)
    assert main(["summary", "--groups", "8", "--no-shuffle", "--format", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert shuffled["config"]["shuffle"] is True and plain["config"]["shuffle"] is False
    assert plain["totals"] == shuffled["totals"]  # paper Table 3: same MACs and params
    main(["summary", "--no-shuffle"])
    assert "(g=3, no shuffle)" in capsys.readouterr().out


def test_config_flags_are_made_from_the_declaration(capsys):
    from shufflenet.config import FIELDS

    with pytest.raises(SystemExit):
        main(["summary", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    for flag in ("--groups", "--blocks S2 S3 S4", "--reduction", "--scale", "--input-size", "--channels",
                 "--classes", "--no-shuffle"):
        assert flag in text, flag
    for name, spec in FIELDS.items():
        assert " ".join(spec.help.split()) in text, name
        if spec.kind is not bool:
            assert f"Allowed: {spec.allowed}." in text, name
