"""The pytest plugin: its fixtures in a user's test run (pytester, a fresh pytest process each), the
README's example test, pytest-xdist workers with a server each, and no cost for runs that use none."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.conformance
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- example-test: start -->\n```python\n(.*?)```\n<!-- example-test: end -->", text, re.S)
    assert m, "README lost its example test"
    return m.group(1)


def test_readme_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=readme_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1)


def test_readme_example_fails_without_its_retry_logic(pytester: pytest.Pytester) -> None:
    # The faults must bite: a client that ignores incorrect_offset, or that does not retry
    # too_many_write_operations entries, fails the very same test.
    naive_offset = readme_example().replace(
        "if e.error.is_incorrect_offset():", "if False:")
    naive_batch = readme_example().replace("retry.append(entry)", "raise RuntimeError('not retried')")
    pytester.makepyfile(test_naive_offset=naive_offset, test_naive_batch=naive_batch)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*incorrect_offset*"])
    result.stdout.fnmatch_lines(["*not retried*"])


def test_fixtures_isolate_tests_and_expose_the_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fixtures="""
        import dropbox, pytest

        def test_a(localbox_server, dropbox_client):
            assert localbox_server.url.startswith("http://127.0.0.1:")
            assert localbox_server.token and localbox_server.admin_token
            dropbox_client.files_upload(b"from a", "/a.txt")
            localbox_server.add_fault("too_many_requests", route="check/user", retry_after=0)
            pytest.token = localbox_server.token
            pytest.url = localbox_server.url

        def test_b_starts_clean(localbox_server, dropbox_client):
            assert localbox_server.url == pytest.url and localbox_server.token == pytest.token
            assert dropbox_client.files_list_folder("").entries == []
            assert localbox_server.faults() == []
            assert dropbox_client.check_user("ok").result == "ok"
            assert [r["route"] for r in localbox_server.requests()] == ["files/list_folder", "check/user"]

        def test_session_variant_keeps_state(localbox_server_session):
            dbx = localbox_server_session.client()
            dbx.files_upload(b"1", "/kept.txt")

        def test_session_variant_sees_it(localbox_server_session):
            names = [e.name for e in localbox_server_session.client().files_list_folder("").entries]
            assert names == ["kept.txt"]

        def test_fault_through_the_fixture(localbox_server):
            dbx = localbox_server.client(max_retries_on_rate_limit=0)
            localbox_server.add_fault("too_many_write_operations", route="files/upload", times=1, retry_after=2)
            with pytest.raises(dropbox.exceptions.RateLimitError) as e:
                dbx.files_upload(b"x", "/x")
            assert e.value.backoff == 2
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_serve_without_pytest(pytester: pytest.Pytester) -> None:
    script = pytester.makepyfile(use_serve="""
        import localbox.testing

        with localbox.testing.serve() as server:
            dbx = server.client()
            dbx.files_upload(b"hi", "/hi.txt")
            print("OK", dbx.files_download("/hi.txt")[1].content.decode())
    """)
    result = pytester.run(sys.executable, str(script))  # the interpreter that has localbox installed
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["OK hi"])


def test_runs_that_use_no_fixture_pay_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        import sys

        def test_plugin_loaded_but_idle(request):
            assert request.config.pluginmanager.has_plugin("localbox")
            assert not [m for m in ("localbox.app", "uvicorn", "dropbox", "requests") if m in sys.modules]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_xdist_workers_get_a_server_each(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("xdist") is None and not os.environ.get("LOCALBOX_TEST_XDIST_PATH"):
        pytest.skip("pytest-xdist is not installed")
    if os.environ.get("LOCALBOX_TEST_XDIST_PATH"):
        monkeypatch.setenv("PYTHONPATH", os.environ["LOCALBOX_TEST_XDIST_PATH"])
    pytester.makepyfile(test_parallel="""
        import os, pytest

        @pytest.mark.parametrize("i", range(8))
        def test_write(localbox_server, dropbox_client, i):
            dropbox_client.files_upload(b"x", f"/{i}.txt")
            assert [e.name for e in dropbox_client.files_list_folder("").entries] == [f"{i}.txt"]
            with open(os.environ["LOCALBOX_URLS_FILE"], "a") as f:
                f.write(f"{os.environ['PYTEST_XDIST_WORKER']} {localbox_server.url}\\n")
    """)
    urls_file = pytester.path / "urls.txt"
    monkeypatch.setenv("LOCALBOX_URLS_FILE", str(urls_file))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=8)
    pairs = {tuple(line.split()) for line in urls_file.read_text().splitlines()}
    assert len(pairs) == len({w for w, _ in pairs}) == len({u for _, u in pairs}) == 2  # one server per worker
