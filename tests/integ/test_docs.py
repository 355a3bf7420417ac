"""docs/asvs.md points at real code and real tests.

Every `tests/`-relative test reference on the page (`integ/test_x.py::
test_y`, `unit/test_x.c::test_y`, `attack/...`) must name a file that
exists and a test function defined in it; every source path (`src/...`,
`etc/...`, ...) must exist. A renamed or deleted test therefore fails
this file instead of leaving the ASVS table pointing at nothing.
"""
import os
import re

from conftest import REPO

DOC = os.path.join(REPO, "docs", "asvs.md")

# `integ/test_login.py::test_userinfo` (also without ::function).
TEST_REF = re.compile(r"`((?:integ|attack|unit)/test_\w+\.(?:py|c))"
                      r"(?:::(test_\w+))?`")
# `src/http/request.c`, `tests/fuzz/`, `Makefile`, `docs/security.md`.
PATH_REF = re.compile(r"`((?:src|include|examples|etc|pam|scripts|docs|"
                      r"tests|bench)/[\w./-]*|Makefile)`")
ROW = re.compile(r"^\| (\d+\.\d+\.\d+)(?:[,–-].*?)? \| .*? \| "
                 r"(met|partly|not met|N/A)\b", re.M)


def doc_text():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def defines(path, func):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".py"):
        return re.search(r"^\s*def %s\(" % func, text, re.M) is not None
    # C (KNF: the return type on the line above) or cmocka registration.
    return re.search(r"^(?:static\s+\w+\s+)?%s\s*\(" % func, text,
                     re.M) is not None


def test_every_referenced_test_exists():
    refs = TEST_REF.findall(doc_text())
    assert len(refs) > 100, "the table lost its test references"
    missing = []
    for rel, func in refs:
        path = os.path.join(REPO, "tests", rel)
        if not os.path.isfile(path):
            missing.append(rel)
        elif func and not defines(path, func):
            missing.append("%s::%s" % (rel, func))
    assert not missing, "docs/asvs.md names tests that do not exist: %s" % (
        sorted(set(missing)))


def test_every_referenced_source_file_exists():
    refs = PATH_REF.findall(doc_text())
    assert len(refs) > 50, "the table lost its code references"
    missing = sorted({p for p in refs
                      if not os.path.exists(os.path.join(REPO, p))})
    assert not missing, "docs/asvs.md names files that do not exist: %s" % (
        missing)


def test_rows_have_an_id_and_a_status():
    rows = ROW.findall(doc_text())
    assert len(rows) > 80, len(rows)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "a requirement listed twice"
    chapters = {i.split(".")[0] for i in ids}
    assert chapters == {"2", "3", "4", "5", "7", "8", "13", "14"}, chapters


def test_the_table_is_linked():
    for rel in ("README.md", os.path.join("docs", "security.md")):
        with open(os.path.join(REPO, rel), encoding="utf-8") as f:
            assert "asvs.md" in f.read(), rel
