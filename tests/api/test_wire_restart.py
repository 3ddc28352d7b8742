"""Wire state across a server restart: open sessions and finished batch jobs stay addressable."""

from __future__ import annotations

from typing import Any

import pytest
from _apiwire import Api, check_file_metadata, ok_json
from dropbox import files

pytestmark = pytest.mark.api


def test_sessions_and_jobs_survive_restart(server: Any, api: Api, folder: str) -> None:
    sid = api.start_ok(b"before ")
    done = api.start_ok(b"batched", close=True)
    launch = ok_json(api.rpc("files/upload_session/finish_batch",
                             {"entries": [{"cursor": {"session_id": done, "offset": 7},
                                           "commit": {"path": f"{folder}/batched"}}]}),
                     files.UploadSessionFinishBatchLaunch_validator)
    status = api.poll_batch(launch["async_job_id"]) if launch[".tag"] == "async_job_id" else launch
    server.restart()
    api.append_ok(sid, 7, b"after")
    check_file_metadata(api.finish_ok(sid, 12, f"{folder}/restarted"), data=b"before after")
    if launch[".tag"] == "async_job_id":
        again = ok_json(api.rpc("files/upload_session/finish_batch/check", {"async_job_id": launch["async_job_id"]}),
                        files.UploadSessionFinishBatchJobStatus_validator)
        assert again == status
    assert api.download_bytes(f"{folder}/batched") == b"batched"
