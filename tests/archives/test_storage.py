"""The storage interface: local disk and Azure Blob Storage (against Azurite)."""

from __future__ import annotations

import os
import time

import pytest
import requests

from lms.archives.storage import AzureBlobStorage, LocalStorage, StorageError, check_key, get_storage


@pytest.fixture
def local(tmp_path):
    return LocalStorage(tmp_path / "store")


@pytest.fixture
def azure(azurite):
    import uuid

    storage = AzureBlobStorage(azurite, f"t{uuid.uuid4().hex[:12]}")
    storage.ensure_container()
    yield storage
    storage.container.delete_container()


@pytest.fixture(params=["local", "azure"])
def storage(request):
    return request.getfixturevalue(request.param)


def test_keys_cannot_leave_the_root():
    for bad in ("../etc/passwd", "/abs", "a/../../b", "A/B", "a//b", "", "a\x00"):
        with pytest.raises(StorageError):
            check_key(bad)
    assert check_key("archives/1/0123abcd") == "archives/1/0123abcd"


def test_chunked_part_resume_commit_and_ranges(storage):
    data = os.urandom(9 * 1024 * 1024 + 123)  # more than one Azure block
    key = "archives/7/part-test"
    assert storage.part_size(key) == 0
    assert storage.append_part(key, 0, [data[:1000], data[1000:3_000_000]]) == 3_000_000
    assert storage.part_size(key) == 3_000_000
    with pytest.raises(StorageError):
        storage.append_part(key, 10, [b"x"])  # wrong offset
    assert storage.append_part(key, 3_000_000, iter([data[3_000_000:]])) == len(data)
    assert not storage.exists(key)  # a part is invisible until committed
    storage.commit_part(key, "video/mp4")
    assert storage.exists(key)
    assert storage.size(key) == len(data)
    assert b"".join(storage.open_range(key, 5, 100)) == data[5:105]
    assert b"".join(storage.open_range(key, len(data) - 10)) == data[-10:]
    assert b"".join(storage.open_range(key)) == data
    storage.delete(key)
    assert not storage.exists(key)


def test_dropped_connection_keeps_received_bytes(storage):
    key = "archives/7/drop"

    def chunks():
        yield b"a" * 1000
        yield b"b" * 500
        raise OSError("connection reset")

    with pytest.raises(OSError):
        storage.append_part(key, 0, chunks())
    assert storage.part_size(key) == 1500
    storage.append_part(key, 1500, [b"c" * 10])
    storage.commit_part(key, "text/plain")
    assert b"".join(storage.open_range(key)) == b"a" * 1000 + b"b" * 500 + b"c" * 10
    storage.delete(key)


def test_local_storage_has_no_signed_urls_but_a_path(local):
    local.write_object("archives/1/x", [b"hello"], "text/plain")
    assert local.signed_url("archives/1/x") is None
    assert local.local_path("archives/1/x").read_bytes() == b"hello"
    local.delete_part("archives/1/never")  # deleting nothing is fine


def test_azure_sas_is_read_only_short_and_serves_ranges(azure):
    data = os.urandom(300_000)
    azure.write_object("archives/3/sas", [data], "video/mp4")
    url = azure.signed_url("archives/3/sas", seconds=600, filename="録画.mp4", content_type="video/mp4")
    assert "sp=r" in url and "se=" in url
    response = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert response.status_code == 206
    assert response.content == data[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert response.headers["Content-Type"] == "video/mp4"
    # Read-only: writing through the SAS is refused.
    put = requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 403
    # Validity is capped at 60 seconds whatever is asked.
    from urllib.parse import parse_qs, urlsplit

    from lms.common.timeutil import utcnow

    query = parse_qs(urlsplit(url).query)
    from datetime import datetime

    expiry = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert (expiry - utcnow()).total_seconds() <= 61


def test_azure_expired_sas_is_refused(azure):
    azure.write_object("archives/3/old", [b"data"], "text/plain")
    url = azure.signed_url("archives/3/old", seconds=1)
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.2)
    assert requests.get(url, timeout=10).status_code == 403


def test_azure_uncommitted_part_is_not_readable(azure):
    azure.append_part("archives/3/hidden", 0, [b"secret"])
    assert not azure.exists("archives/3/hidden")
    assert azure.part_size("archives/3/hidden") == 6


def test_get_storage_follows_configuration(app, azurite):
    assert get_storage().name == "local"
    app.config.update(LMS_STORAGE_BACKEND="azure", AZURE_STORAGE_CONNECTION_STRING=azurite,
                      AZURE_STORAGE_CONTAINER="configured")
    assert isinstance(get_storage(), AzureBlobStorage)
    assert get_storage().container_name == "configured"


def test_local_part_has_one_writer_at_a_time(local):
    key = "archives/7/race"
    started, release = [], []

    def slow():
        yield b"a" * 10
        started.append(True)
        # A second writer arrives while the first still holds the part.
        with pytest.raises(StorageError):
            local.append_part(key, 0, [b"b" * 10])
        release.append(True)
        yield b"a" * 10

    assert local.append_part(key, 0, slow()) == 20
    assert started and release
    local.commit_part(key, "video/webm")  # what the part holds: the first writer's bytes only
    assert b"".join(local.open_range(key)) == b"a" * 20


def test_list_keys_finds_parts_and_objects_and_delete_part_leaves_nothing(storage):
    from datetime import timedelta

    from lms.common.timeutil import utcnow

    storage.append_part("archives/import/op1_1-a", 0, [b"half"])  # Azure: uncommitted blocks only
    storage.write_object("archives/import/op1_1-b", [b"whole"], "video/mp4")
    storage.write_object("archives/9/other", [b"elsewhere"], "video/mp4")
    found = storage.list_keys("archives/import/")
    assert sorted(found) == ["archives/import/op1_1-a", "archives/import/op1_1-b"]
    assert all(abs(when - utcnow()) < timedelta(minutes=5) for when in found.values())
    storage.delete_part("archives/import/op1_1-a")
    assert storage.part_size("archives/import/op1_1-a") == 0
    assert sorted(storage.list_keys("archives/import/")) == ["archives/import/op1_1-b"]
    storage.delete("archives/import/op1_1-b")
    assert storage.list_keys("archives/import/") == {}
    assert storage.list_keys("archives/none/") == {}


# ------------------------------------------------ Azure with Microsoft Entra ID (no account key)


@pytest.fixture
def entra_storage(app, azurite_entra, managed_identity):
    """The storage as production configures it: the account URL and the managed identity."""
    import uuid

    app.config.update(LMS_STORAGE_BACKEND="azure", AZURE_STORAGE_ACCOUNT_URL=azurite_entra["account_url"],
                      AZURE_STORAGE_CONNECTION_STRING=None, AZURE_STORAGE_CA_BUNDLE=azurite_entra["ca_bundle"],
                      AZURE_STORAGE_CONTAINER=f"mi{uuid.uuid4().hex[:12]}",
                      AZURE_STORAGE_MANAGED_IDENTITY_CLIENT_ID=None)
    storage = get_storage()
    yield storage
    storage.container.delete_container()


def test_managed_identity_reads_and_writes_without_any_account_key(entra_storage, managed_identity):
    assert entra_storage.uses_entra
    assert not hasattr(entra_storage.service.credential, "account_key")
    data = os.urandom(AZURE_BLOCK_PLUS)
    written = entra_storage.append_part("archives/9/mi", 0, [data[:1000]])
    written = entra_storage.append_part("archives/9/mi", written, [data[1000:]])
    assert written == len(data) and not entra_storage.exists("archives/9/mi")
    entra_storage.commit_part("archives/9/mi", "video/mp4")
    assert entra_storage.size("archives/9/mi") == len(data)
    assert b"".join(entra_storage.open_range("archives/9/mi", 5, 10)) == data[5:15]
    entra_storage.check()
    # The token came from the managed-identity endpoint, for Azure Storage, with its secret.
    asked = [r for r in managed_identity.requests if r.get("header") == managed_identity.secret]
    assert asked and all(r["resource"] == "https://storage.azure.com" for r in asked)
    assert all(r["api-version"] == "2019-08-01" for r in asked)


def test_playback_links_are_user_delegation_sas_signed_once_for_many(entra_storage, managed_identity, monkeypatch):
    """Links are signed with a user-delegation key that the service issued to the managed
    identity (Azurite checks the bearer token before it hands one out), one key for many links.

    Azurite 3.35 — the last release that runs on Node 20 — verifies user-delegation signatures
    only up to service version 2025-11-05, while azure-storage-blob 12.31 signs at 2026-10-06
    (two more lines in the string-to-sign: signed request headers and query parameters), so
    fetching through such a link is not checked against the emulator here; the account-key
    path's links are (test_azure_sas_is_read_only_short_and_serves_ranges)."""
    import base64
    import hashlib
    import hmac
    from datetime import datetime
    from urllib.parse import parse_qs, urlsplit

    from lms.common.timeutil import utcnow

    entra_storage.write_object("archives/9/play", [os.urandom(2000)], "video/mp4")
    calls = []
    original = entra_storage.service.get_user_delegation_key

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(entra_storage.service, "get_user_delegation_key", counted)
    urls = [entra_storage.signed_url("archives/9/play", seconds=600, filename="録画.mp4", content_type="video/mp4")
            for _ in range(5)]
    assert len(calls) <= 1  # one key for every link (none if an earlier test already fetched it)
    key = entra_storage.user_delegation_key()
    # The key names the managed identity whose token Azurite accepted.
    assert key.signed_oid == managed_identity.object_id and key.signed_tid == managed_identity.tenant_id
    query = parse_qs(urlsplit(urls[0]).query)
    assert query["skoid"] == [key.signed_oid] and query["sktid"] == [key.signed_tid]
    assert query["skt"] == [key.signed_start] and query["ske"] == [key.signed_expiry]
    assert query["sp"] == ["r"] and query["sr"] == ["b"]
    assert urlsplit(urls[0]).path.endswith(f"/{entra_storage.container_name}/archives/9/play")
    # Short: capped at 60 seconds whatever is asked, and inside the key's own validity.
    expiry = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert (expiry - utcnow()).total_seconds() <= 61
    assert expiry < datetime.fromisoformat(key.signed_expiry.replace("Z", "+00:00"))
    # Signed with the delegation key (an HMAC-SHA256 the service can check), not with anything else.
    assert len(base64.b64decode(query["sig"][0])) == hashlib.sha256().digest_size
    assert query["sig"][0] != base64.b64encode(hmac.new(b"", b"", hashlib.sha256).digest()).decode()


def test_a_delegation_key_near_its_end_is_renewed(entra_storage, monkeypatch):
    entra_storage.write_object("archives/9/renew", [b"data"], "text/plain")
    entra_storage.signed_url("archives/9/renew")
    calls = []
    original = entra_storage.service.get_user_delegation_key
    monkeypatch.setattr(entra_storage.service, "get_user_delegation_key",
                        lambda *a, **k: calls.append(a) or original(*a, **k))
    # Pretend the key was fetched long ago: less than the margin remains.
    monkeypatch.setattr(entra_storage, "DELEGATION_KEY_MARGIN", AzureBlobStorage.DELEGATION_KEY_LIFETIME * 2)
    entra_storage.signed_url("archives/9/renew")
    assert len(calls) == 1


def test_without_a_managed_identity_storage_fails_clearly(azurite_entra, managed_identity):
    """A machine whose identity endpoint refuses cannot reach the blobs: the error says so
    (no fallback to any other credential)."""
    from azure.core.exceptions import ClientAuthenticationError

    from lms.archives.storage import managed_identity_credential

    managed_identity.refuse = True
    try:
        fresh = AzureBlobStorage(None, "refused", account_url=azurite_entra["account_url"],
                                 credential=managed_identity_credential(None, azurite_entra["ca_bundle"]),
                                 ca_bundle=azurite_entra["ca_bundle"])
        started = time.monotonic()
        with pytest.raises(ClientAuthenticationError):
            fresh.size("archives/9/none")
        assert time.monotonic() - started < 30  # refused, not retried for minutes
    finally:
        managed_identity.refuse = False


def test_production_refuses_azure_without_an_endpoint(monkeypatch):
    from config import ConfigError, ProductionConfig

    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://root@127.0.0.1/test")
    monkeypatch.delenv("LMS_DEMO_LOGIN", raising=False)
    monkeypatch.setenv("LMS_STORAGE_BACKEND", "azure")
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_URL", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(ConfigError, match="AZURE_STORAGE_ACCOUNT_URL"):
        ProductionConfig.validate()
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", "https://manabi.blob.core.windows.net")
    ProductionConfig.validate()


AZURE_BLOCK_PLUS = 9 * 1024 * 1024
