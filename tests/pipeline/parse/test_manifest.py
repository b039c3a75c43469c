import pytest

from pipeline.config import ConfigError
from pipeline.parse.manifest import infer_subject, parse_manifest


def test_csv_and_yaml_forms():
    csv_manifest = parse_manifest("path,subject,licence,title\nphysics/*.pdf,physics,CC BY,Gauss\n", "m.csv")
    assert csv_manifest.lookup("physics/ch1.pdf").subject == "physics"
    assert csv_manifest.lookup("chem/ch1.pdf") is None
    yaml_map = parse_manifest("'*bio*': biology\n'med/*': {subject: medicine, licence: CC0}\n", "m.yaml")
    assert yaml_map.lookup("x/bio_book.pdf").subject == "biology"
    assert yaml_map.lookup("med/a.pdf").licence == "CC0"
    yaml_list = parse_manifest("- {path: '*.pdf', subject: cs, title: Algorithms}\n", "m.yaml")
    assert yaml_list.lookup("a/b.pdf").title == "Algorithms"


def test_bad_manifest_names_file_row_and_allowed_values():
    with pytest.raises(ConfigError, match=r"m.csv:2: subject 'astrology' is not one of math"):
        parse_manifest("path,subject\n*.pdf,astrology\n", "m.csv")
    with pytest.raises(ConfigError, match="unknown column"):
        parse_manifest("path,subjekt\n*.pdf,math\n", "m.csv")
    with pytest.raises(ConfigError, match="'path'"):
        parse_manifest("- {subject: math}\n", "m.yaml")


def test_subject_inferred_from_file_words():
    assert infer_subject("SCANNED_chem_uci_chem132a.pdf") == "chemistry"
    assert infer_subject("stats_openstax_intro.pdf") == "math"
    assert infer_subject("econ/book.pdf") == "economics"
    assert infer_subject("book.pdf") is None
