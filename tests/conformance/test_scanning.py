"""Malicious-file scanning on commit: findings in repo info, quarantine on download."""

from __future__ import annotations

import io
import os
import pickle

import httpx
import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from tests.hubserver import HubServer


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_malicious_pickle_is_flagged_and_quarantined(hub: HubServer, repo_name: str, hf_home: object) -> None:
    torch = pytest.importorskip("torch")
    api = hub.api()
    rid = f"alice/{repo_name}"
    api.create_repo(rid)
    clean = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, clean)
    api.upload_file(path_or_fileobj=clean.getvalue(), path_in_repo="clean.bin", repo_id=rid)
    api.upload_file(path_or_fileobj=pickle.dumps(_Exploit()), path_in_repo="model.bin", repo_id=rid)

    info = httpx.get(f"{hub.url}/api/models/{rid}", headers={"authorization": f"Bearer {hub.alice_token}"}).json()
    scans = {s["rfilename"]: s.get("scan") for s in info["siblings"]}
    assert scans["clean.bin"]["status"] == "safe"
    assert scans["model.bin"]["status"] == "unsafe" and scans["model.bin"]["quarantined"] is True
    assert any("system" in imp for imp in scans["model.bin"]["imports"])
    assert info["scan"]["quarantined"] == ["model.bin"]

    # nobody gets the bytes by default, not even the owner; the owner can ask for them explicitly.
    # (huggingface_hub turns any HEAD error it has no class for into a cache miss, with the 403 as cause.)
    for token in (hub.bob_token, hub.alice_token):
        with pytest.raises(LocalEntryNotFoundError) as err:
            hf_hub_download(rid, "model.bin", token=token)
        cause = err.value.__cause__
        assert isinstance(cause, HfHubHTTPError) and cause.response.status_code == 403
        assert "quarantined" in str(cause)
    r = httpx.get(f"{hub.url}/{rid}/resolve/main/model.bin", params={"quarantine": "accept"},
                  headers={"authorization": f"Bearer {hub.bob_token}"}, follow_redirects=True)
    assert r.status_code == 403
    r = httpx.get(f"{hub.url}/{rid}/resolve/main/model.bin", params={"quarantine": "accept"},
                  headers={"authorization": f"Bearer {hub.alice_token}"}, follow_redirects=True)
    assert r.status_code == 200 and r.content == pickle.dumps(_Exploit())
    assert hf_hub_download(rid, "clean.bin", token=hub.bob_token)


def test_bad_safetensors_header_is_reported(hub: HubServer, repo_name: str) -> None:
    api = hub.api()
    rid = f"alice/{repo_name}"
    api.create_repo(rid)
    header = b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4000]}}'
    blob = len(header).to_bytes(8, "little") + header + b"\0" * 16
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.safetensors", repo_id=rid)
    info = httpx.get(f"{hub.url}/api/models/{rid}", headers={"authorization": f"Bearer {hub.alice_token}"}).json()
    scan = {s["rfilename"]: s.get("scan") for s in info["siblings"]}["w.safetensors"]
    assert scan["status"] in ("unsafe", "suspicious") and scan["findings"]
