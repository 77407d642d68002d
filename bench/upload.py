"""Benchmark: a 2 GiB archive upload through the app (tus 1.0.0) against a plain disk write.

Starts gunicorn (sync workers, as in production) and the background worker (``flask lms
worker``, Redis queue) against a fresh PostgreSQL database (dropped at the end) with
LMS_STORAGE_DIR in a temporary directory, signs a trainer in through the demo sign-in, and
uploads 2 GiB (an MP4 header, then random bytes) the way the browser does: a tus creation
request declaring the file's SHA-256, then PATCH requests of 32 MiB with the CSRF header,
straight to gunicorn. The upload clock stops when the last PATCH returns: the bytes are stored,
fsynced and their type checked (``mb_s``). The SHA-256 is verified off the request path by the
worker, which streams the stored file through hashlib; until it passes the file is not
visible and the archive cannot be published. So the script then asks to publish at once
(refused while verifying: ``publish_refused_while_verifying``), watches the archive's page
until the file is verified (``verify_s``, from the last PATCH's answer), publishes, and checks
in the database that the file is READY with the declared SHA-256 and the archive published.
The app's processes and the worker are sampled for their resident memory every 20 ms.

In the same run, the same amount is written in 8 MiB blocks to the same directory with an fsync
at the end (``disk_mb_s``).

Prints one JSON object: mb_s, disk_mb_s, ratio (mb_s / disk_mb_s), peak_rss_mb (largest single
process, app or worker), ratio_verified (upload and verification together / disk), and details.
Targets: peak_rss_mb <= 150, ratio >= 0.6, the upload verified before it can be published.

    .venv/bin/python bench/upload.py [--size-mb 2048] [--chunk-mb 32]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import re
import shutil
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from bench.common import (  # noqa: E402
    Agent,
    Gunicorn,
    Worker,
    bench_app,
    cpu_seconds,
    csrf_token,
    emit,
    fresh_database,
    request,
    sign_in_demo,
)

MiB = 1024 * 1024


def generate(database_url: str) -> dict:
    from sqlalchemy import select

    from lms.archives.models import Archive
    from lms.auth.models import User, UserRole
    from lms.courses.models import PUBLISHED, Course
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import StaffMember

    with bench_app(database_url):
        tokyo = db.session.scalar(select(Municipality).where(Municipality.code == "130001"))
        trainer = User(tenant_id="bench-tenant", object_id="bench-trainer", display_name="ベンチ 講師",
                       email="bench.trainer@example.lg.jp", municipality_id=tokyo.id, is_demo=True)
        trainer.role_rows = [UserRole(role="trainer")]
        db.session.add(trainer)
        db.session.flush()
        db.session.add(StaffMember(municipality_id=tokyo.id, user_id=trainer.id, employee_number="T0000001",
                                   full_name="ベンチ 講師", sign_in_name=trainer.email, email=trainer.email))
        course = Course(title="Teams 活用研修", summary="", description_md="", status=PUBLISHED, eligible_all=True,
                        owner_id=trainer.id, search_text="teams 活用研修")
        db.session.add(course)
        db.session.flush()
        archive = Archive(course_id=course.id, title="第1回 録画", description="", created_by_id=trainer.id)
        db.session.add(archive)
        db.session.commit()
        return {"trainer_id": trainer.id, "archive_id": archive.id}


class RssSampler(threading.Thread):
    """The largest resident set of any single process under each root (gunicorn master and
    workers; the background worker)."""

    def __init__(self, *pids: int):
        super().__init__(daemon=True)
        import psutil

        self.roots = [psutil.Process(pid) for pid in pids]
        self.peaks = [0 for _ in pids]
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            for n, root in enumerate(self.roots):
                with contextlib.suppress(psutil.NoSuchProcess):
                    for proc in [root, *root.children(recursive=True)]:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            self.peaks[n] = max(self.peaks[n], proc.memory_info().rss)
            time.sleep(0.02)


ROOT = Path(__file__).resolve().parent.parent
VERIFYING_BADGE = "検証中"


def mp4_header(size: int, seconds: int = 5400) -> bytes:
    """The boxes an MP4 begins with when its index comes first (as a recording saved for the
    web is): ``ftyp``, ``moov`` with a ``mvhd`` stating the length, then the header of the
    ``mdat`` box that holds the rest of the file's ``size`` bytes. A video whose length cannot
    be read is not publishable (lms.archives.services), so the bench's file states one."""
    ftyp = struct.pack(">I4s4sI", 32, b"ftyp", b"isom", 0x200) + b"isomiso2avc1mp41"
    matrix = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    mvhd_body = (struct.pack(">B3sIIII", 0, b"\x00\x00\x00", 0, 0, 1000, seconds * 1000)
                 + struct.pack(">IH10s", 0x00010000, 0x0100, bytes(10)) + matrix + bytes(24) + struct.pack(">I", 2))
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    head = ftyp + moov
    return head + struct.pack(">I4sQ", 1, b"mdat", size - len(head))


class Payload:
    """The file: an MP4's first boxes (``mp4_header``), then random bytes (one random block,
    reused) as the media data, as memoryviews."""

    def __init__(self, size: int, chunk: int):
        self.size, self.chunk = size, chunk
        self.block = bytes(os.urandom(chunk))
        header = mp4_header(size)
        self.first = header + self.block[len(header):]

    def chunks(self):
        sent = 0
        while sent < self.size:
            n = min(self.chunk, self.size - sent)
            yield memoryview(self.first if sent == 0 else self.block)[:n]
            sent += n

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for part in self.chunks():
            digest.update(part)
        return digest.hexdigest()


def _own_cpu() -> float:
    usage = os.times()
    return usage.user + usage.system


def disk_write(directory: Path, size: int) -> float:
    path = directory / "disk-bench.bin"
    block = os.urandom(8 * MiB)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < size:
            written += os.write(fd, block[: min(len(block), size - written)])
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    path.unlink()
    return size / MiB / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--chunk-mb", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    size, chunk = args.size_mb * MiB, args.chunk_mb * MiB
    work = Path(tempfile.mkdtemp(prefix="lms-bench-upload-"))
    storage = work / "storage"
    storage.mkdir()
    try:
        with fresh_database("lms_bench_upload") as url:
            data = generate(url)
            env = {"LMS_STORAGE_DIR": str(storage), "GUNICORN_CMD_ARGS": "--timeout 300"}
            with Gunicorn(url, workers=args.workers, env=env) as server, Worker(server.env) as worker:
                agent = Agent()
                sign_in_demo(server.base_url, agent, data["trainer_id"])
                manage = f"/archives/manage/{data['archive_id']}"
                page = request(server.base_url, "GET", manage, agent=agent)
                token = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
                body = Payload(size, chunk)
                digest = body.sha256()  # computed before the clock starts, declared like a browser does
                sampler = RssSampler(server.proc.pid, worker.proc.pid)
                sampler.start()
                app_cpu = cpu_seconds(server.pids())
                worker_cpu = cpu_seconds([worker.proc.pid])
                started = time.perf_counter()
                patches, last_patch_s, verification = upload(server.port, agent, token, data["archive_id"], body,
                                                             digest)
                elapsed = time.perf_counter() - started
                app_cpu = cpu_seconds(server.pids()) - app_cpu
                refused = publish(server.base_url, agent, manage) if verification == "pending" else None
                verify_s = wait_for_verification(server.base_url, agent, manage) - (started + elapsed)
                worker_cpu = cpu_seconds([worker.proc.pid]) - worker_cpu
                sampler.stop.set()
                sampler.join()
                published = publish(server.base_url, agent, manage)
            visible = check_visible(url, data["archive_id"], digest, size)
        disk_started = _own_cpu()
        disk_mb_s = disk_write(storage, size)
        disk_cpu = _own_cpu() - disk_started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mb_s = size / MiB / elapsed
    verified_mb_s = size / MiB / (elapsed + verify_s)
    emit({
        "mb_s": round(mb_s, 1),
        "disk_mb_s": round(disk_mb_s, 1),
        "ratio": round(mb_s / disk_mb_s, 3) if disk_mb_s else 0.0,
        "peak_rss_mb": round(max(sampler.peaks) / MiB, 1),
        "ratio_verified": round(verified_mb_s / disk_mb_s, 3) if disk_mb_s else 0.0,
        "verify_s": round(verify_s, 2),
        "last_patch_answer": verification,
        # Asked right after a "pending" answer: refused (True) unless the worker was done already.
        "publish_refused_while_verifying": (not refused) if refused is not None else None,
        "published_after_verification": bool(published),
        "app_peak_rss_mb": round(sampler.peaks[0] / MiB, 1),
        "worker_peak_rss_mb": round(sampler.peaks[1] / MiB, 1),
        "size_mb": args.size_mb,
        "chunk_mb": args.chunk_mb,
        "patch_requests": patches,
        "seconds": round(elapsed, 1),
        # CPU seconds (user + system) per GiB: the app's processes during the upload, and this
        # process during the plain write. Load-independent, unlike the rates above.
        "app_cpu_s_per_gib": round(app_cpu / (size / 1024 ** 3), 3),
        "disk_cpu_s_per_gib": round(disk_cpu / (size / 1024 ** 3), 3),
        "worker_cpu_s_per_gib": round(worker_cpu / (size / 1024 ** 3), 3),
        "last_patch_s": round(last_patch_s, 2),
        "verified_visible_and_published": visible,
        "gunicorn_workers": args.workers,
    })


def upload(port: int, agent: Agent, token: str, archive_id: int, body: Payload, digest: str) -> tuple[int, float, str]:
    """The browser's protocol: creation, then PATCHes; returns (PATCH count, seconds of the last
    one, its Upload-Verification answer: "pending" while the worker verifies, or "verified")."""
    headers = {"Tus-Resumable": "1.0.0", "X-CSRFToken": token, "Cookie": agent.cookie_header()}
    meta = ",".join([
        "filename " + base64.b64encode("録画.mp4".encode()).decode(),
        "sha256 " + base64.b64encode(digest.encode()).decode(),
    ])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", f"/archives/manage/{archive_id}/uploads", headers={
        **headers, "Upload-Length": str(body.size), "Upload-Metadata": meta})
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        raise SystemExit(f"creation refused: {response.status}")
    location = response.getheader("Location")
    conn.close()
    offset = patches = 0
    last = 0.0
    verification = ""
    for part in body.chunks():
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("PATCH", location, body=part, headers={
            **headers, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(part))})
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        conn.close()
        last = time.perf_counter() - started
        patches += 1
        if response.status != 204:
            raise SystemExit(f"PATCH at {offset} refused: {response.status} {text}")
        offset = int(response.getheader("Upload-Offset"))
        verification = response.getheader("Upload-Verification") or ""
    return patches, last, verification


def publish(base_url: str, agent: Agent, manage: str) -> bool:
    """Ask to publish the archive the way the page does; True when it was published."""
    page = request(base_url, "GET", manage, agent=agent)
    answer = request(base_url, "POST", f"{manage}/publish", agent=agent, form={"csrf_token": csrf_token(page.text)})
    if answer.status not in (302, 303):
        raise SystemExit(f"publish answered {answer.status}")
    shown = request(base_url, "GET", manage, agent=agent).text
    return "アーカイブを公開しました" in shown


def wait_for_verification(base_url: str, agent: Agent, manage: str, timeout: float = 600) -> float:
    """The moment (perf_counter) the archive's page no longer shows the upload as being verified."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if VERIFYING_BADGE not in request(base_url, "GET", manage, agent=agent).text:
            return time.perf_counter()
        time.sleep(0.05)
    raise SystemExit(f"not verified within {timeout} s")


def check_visible(database_url: str, archive_id: int, digest: str, size: int) -> bool:
    from sqlalchemy import select

    from lms.archives.models import READY, Archive, ArchiveFile
    from lms.extensions import db

    with bench_app(database_url):
        row = db.session.scalar(select(ArchiveFile).where(ArchiveFile.archive_id == archive_id))
        archive = db.session.get(Archive, archive_id)
        return bool(row and row.status == READY and row.sha256 == digest and row.size_bytes == size
                    and archive is not None and archive.status == "published")


if __name__ == "__main__":
    main()
