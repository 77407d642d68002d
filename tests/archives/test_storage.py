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
