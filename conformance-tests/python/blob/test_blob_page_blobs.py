"""Page blobs: create, Put Page (update, clear), Get Page Ranges and its diff, resize and
sequence numbers, snapshots, copies, conditions, leases and SAS.

https://learn.microsoft.com/rest/api/storageservices/put-blob
https://learn.microsoft.com/rest/api/storageservices/put-page
https://learn.microsoft.com/rest/api/storageservices/put-page-from-url
https://learn.microsoft.com/rest/api/storageservices/get-page-ranges
https://learn.microsoft.com/rest/api/storageservices/set-blob-properties
"""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceModifiedError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobType,
    SequenceNumberAction,
    generate_blob_sas,
)

from blob_helpers import assert_raw_error, bpath, code, expect_error, md5_b64, random_bytes

pytestmark = pytest.mark.filterwarnings("ignore:get_page_ranges is deprecated")

KIB = 1024
MIB = 1024 * 1024


def page_blob(container, name="disk", size=4 * KIB, **kw):
    b = container.get_blob_client(name)
    b.create_page_blob(size, **kw)
    return b


def ranges(blob, **kw):
    """(written, cleared) as lists of (start, end) pairs."""
    written, cleared = blob.get_page_ranges(**kw)
    return [(r["start"], r["end"]) for r in written], [(r["start"], r["end"]) for r in cleared]


def test_a_new_page_blob_is_its_declared_size_of_zeros(container):
    b = page_blob(container, size=8 * KIB, metadata={"k": "v"}, tags={"t": "1"})
    p = b.get_blob_properties()
    assert p.blob_type == BlobType.PAGEBLOB
    assert p.size == 8 * KIB
    assert p.page_blob_sequence_number == 0
    assert p.metadata == {"k": "v"}
    assert b.get_blob_tags() == {"t": "1"}
    assert b.download_blob().readall() == bytes(8 * KIB)
    assert ranges(b) == ([], [])
    listed = next(container.list_blobs(include=["metadata"]))
    assert listed.blob_type == BlobType.PAGEBLOB
    assert listed.size == 8 * KIB


def test_put_page_writes_and_reads_back_with_zeros_between(container):
    b = page_blob(container, size=16 * KIB)
    data = random_bytes(KIB)
    r = b.upload_page(data, offset=2 * KIB, length=KIB)
    assert r["etag"] and r["last_modified"]
    assert r["blob_sequence_number"] == 0
    whole = b.download_blob().readall()
    assert whole == bytes(2 * KIB) + data + bytes(13 * KIB)
    part = b.download_blob(offset=2 * KIB + 100, length=1000).readall()
    assert part == (data + bytes(KIB))[100:1100]
    assert ranges(b) == ([(2 * KIB, 3 * KIB - 1)], [])


def test_overwrites_and_clear_cuts_holes(container):
    b = page_blob(container, size=16 * KIB)
    a, c = random_bytes(4 * KIB), random_bytes(KIB)
    b.upload_page(a, offset=0, length=4 * KIB)
    b.upload_page(c, offset=6 * KIB, length=KIB)
    assert ranges(b) == ([(0, 4 * KIB - 1), (6 * KIB, 7 * KIB - 1)], [])
    # A clear in the middle of a range splits it.
    b.clear_page(offset=KIB, length=KIB)
    assert ranges(b) == ([(0, KIB - 1), (2 * KIB, 4 * KIB - 1), (6 * KIB, 7 * KIB - 1)], [])
    got = b.download_blob().readall()
    assert got[:KIB] == a[:KIB]
    assert got[KIB : 2 * KIB] == bytes(KIB)
    assert got[2 * KIB : 4 * KIB] == a[2 * KIB :]
    assert got[6 * KIB : 7 * KIB] == c
    # An overwrite inside a run keeps its outer parts.
    d = random_bytes(512)
    b.upload_page(d, offset=3 * KIB, length=512)
    got = b.download_blob().readall()
    assert got[3 * KIB : 3 * KIB + 512] == d
    assert got[2 * KIB : 3 * KIB] == a[2 * KIB : 3 * KIB]
    assert got[3 * KIB + 512 : 4 * KIB] == a[3 * KIB + 512 :]


def test_get_page_ranges_in_a_range(container):
    b = page_blob(container, size=16 * KIB)
    for i in range(0, 16, 2):
        b.upload_page(random_bytes(KIB), offset=i * KIB, length=KIB)
    written, _ = ranges(b, offset=3 * KIB, length=6 * KIB)
    assert written == [(4 * KIB, 5 * KIB - 1), (6 * KIB, 7 * KIB - 1), (8 * KIB, 9 * KIB - 1)]


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 ignores maxresults and marker. https://learn.microsoft.com/rest/api/storageservices/get-page-ranges (URI parameters: marker and maxresults, version 2020-10-02 and later)"
)
def test_get_page_ranges_pages_through_with_a_marker(container):
    b = page_blob(container, size=64 * KIB)
    for i in range(0, 64, 2):
        b.upload_page(random_bytes(512), offset=i * KIB, length=512)
    pages = list(b.list_page_ranges(results_per_page=5).by_page())
    assert len(pages) == 7
    got = [(r.start, r.end) for page in pages for r in page]
    assert got == [(i * KIB, i * KIB + 511) for i in range(0, 64, 2)]


def put_page(braw, container, body, rng, write="update", **headers):
    return braw.put(
        bpath(container.container_name, "disk"),
        {"comp": "page"},
        body=body,
        headers={"x-ms-page-write": write, "x-ms-range": rng, **headers},
    )


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 answers 416 with the code 'Requested Range Not Satisfiable' (and 400 InvalidOperation for alignment). https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes (InvalidPageRange: 416 'The page range specified is invalid.')"
)
def test_bad_page_writes_get_azures_errors(container, braw):
    b = page_blob(container, size=4 * KIB)
    # Unaligned start or end.
    assert_raw_error(put_page(braw, container, bytes(512), "bytes=1-512"), 400, "InvalidHeaderValue")
    assert_raw_error(put_page(braw, container, bytes(500), "bytes=0-499"), 400, "InvalidHeaderValue")
    # Past the blob's end: wholly, or its end only.
    assert_raw_error(put_page(braw, container, bytes(512), "bytes=4096-4607"), 416, "InvalidPageRange")
    assert_raw_error(put_page(braw, container, bytes(1024), "bytes=3584-4607"), 416, "InvalidPageRange")
    r = put_page(braw, container, b"", "bytes=3584-4607", write="clear")
    assert_raw_error(r, 416, "InvalidPageRange")
    # Nothing was written.
    assert ranges(b) == ([], [])


def test_malformed_page_writes_are_refused(container, braw):
    b = page_blob(container, size=4 * KIB)
    # A body that is not the range's length.
    assert put_page(braw, container, bytes(1024), "bytes=0-511").status in (400, 416)
    # An unknown page write.
    assert put_page(braw, container, bytes(512), "bytes=0-511", write="erase").status == 400
    # A clear that sends a body.
    assert put_page(braw, container, bytes(512), "bytes=0-511", write="clear").status == 400
    # Page operations on a block blob.
    container.upload_blob("block", b"x")
    expect_error(
        lambda: container.get_blob_client("block").upload_page(bytes(512), offset=0, length=512),
        409,
        "InvalidBlobType",
    )
    assert ranges(b) == ([], [])


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 takes a larger update. https://learn.microsoft.com/rest/api/storageservices/put-page (Range: 'For a page update operation, the page range can be up to 4 MiB in size.')"
)
def test_an_update_is_at_most_4_mib(container, braw):
    page_blob(container, size=8 * MIB)
    r = put_page(braw, container, bytes(4 * MIB + 512), f"bytes=0-{4 * MIB + 511}")
    assert_raw_error(r, 413, "RequestBodyTooLarge")
    # A clear may cover the whole blob.
    assert put_page(braw, container, b"", f"bytes=0-{8 * MIB - 1}", write="clear").status == 201


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 answers 400 InvalidOperation. https://learn.microsoft.com/rest/api/storageservices/put-blob (x-ms-blob-content-length must be aligned to a 512-byte boundary; Azure answers 400 InvalidHeaderValue naming the header, as the recorded responses of azure-sdk-for-net's PageBlobClientTests.CreateAsync_Error show)"
)
def test_page_blob_size_must_be_page_aligned(container, braw):
    r = braw.put(
        bpath(container.container_name, "odd"),
        headers={"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": "1000"},
    )
    assert_raw_error(r, 400, "InvalidHeaderValue")
    r = braw.put(
        bpath(container.container_name, "huge"),
        headers={"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str((8 << 40) + 512)},
    )
    assert_raw_error(r, 400, "InvalidHeaderValue")


def test_page_blob_needs_a_size_and_no_body(container, braw):
    r = braw.put(
        bpath(container.container_name, "nosize"),
        headers={"x-ms-blob-type": "PageBlob"},
    )
    assert r.status == 400, r
    r = braw.put(
        bpath(container.container_name, "body"),
        body=b"abc",
        headers={"x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": "512"},
    )
    assert r.status == 400, r
    assert [b.name for b in container.list_blobs()] == []


def test_an_8_tib_page_blob_is_sparse(container):
    b = page_blob(container, "big", size=8 << 40)
    data = random_bytes(512)
    b.upload_page(data, offset=(8 << 40) - 512, length=512)
    assert b.get_blob_properties().size == 8 << 40
    assert b.download_blob(offset=(8 << 40) - 1024, length=1024).readall() == bytes(512) + data
    assert ranges(b) == ([((8 << 40) - 512, (8 << 40) - 1)], [])


def test_sequence_number_conditions(container):
    b = page_blob(container, sequence_number=7)
    assert b.get_blob_properties().page_blob_sequence_number == 7
    page = bytes(512)
    b.upload_page(page, offset=0, length=512, if_sequence_number_lte=7)
    b.upload_page(page, offset=0, length=512, if_sequence_number_eq=7)
    b.upload_page(page, offset=0, length=512, if_sequence_number_lt=8)
    for kw in ({"if_sequence_number_lte": 6}, {"if_sequence_number_lt": 7}, {"if_sequence_number_eq": 8}):
        expect_error(
            lambda: b.upload_page(page, offset=0, length=512, **kw),
            412,
            "SequenceNumberConditionNotMet",
        )
    expect_error(
        lambda: b.clear_page(offset=0, length=512, if_sequence_number_lt=1),
        412,
        "SequenceNumberConditionNotMet",
    )


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 takes a negative sequence condition. https://learn.microsoft.com/rest/api/storageservices/put-page (x-ms-if-sequence-number-lt/le/eq take a sequence number, 0 or more; Azure answers 400 InvalidInput, as azure-sdk-for-net's recorded UploadAsync_AccessConditionsFail shows)"
)
def test_a_negative_sequence_condition_is_invalid_input(container, braw):
    page_blob(container)
    r = put_page(braw, container, bytes(512), "bytes=0-511", **{"x-ms-if-sequence-number-lt": "-1"})
    assert_raw_error(r, 400, "InvalidInput")


def test_sequence_number_actions(container):
    b = page_blob(container, sequence_number=5)
    r = b.set_sequence_number(SequenceNumberAction.Max, 3)
    assert r["blob_sequence_number"] == 5
    r = b.set_sequence_number(SequenceNumberAction.Max, 9)
    assert r["blob_sequence_number"] == 9
    r = b.set_sequence_number(SequenceNumberAction.Update, 2)
    assert r["blob_sequence_number"] == 2
    r = b.set_sequence_number(SequenceNumberAction.Increment)
    assert r["blob_sequence_number"] == 3
    assert b.get_blob_properties().page_blob_sequence_number == 3
    listed = next(container.list_blobs())
    assert listed.page_blob_sequence_number == 3


def test_sequence_number_actions_need_their_number(container, braw):
    page_blob(container)
    path = bpath(container.container_name, "disk")
    # Update and max need a number; increment takes none.
    r = braw.put(path, {"comp": "properties"}, headers={"x-ms-sequence-number-action": "update"})
    assert r.status == 400, r
    r = braw.put(
        path,
        {"comp": "properties"},
        headers={"x-ms-sequence-number-action": "increment", "x-ms-blob-sequence-number": "3"},
    )
    assert r.status == 400, r


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 takes -1 and increments past 2^63 - 1. https://learn.microsoft.com/rest/api/storageservices/set-blob-properties (x-ms-blob-sequence-number: 0 to 2^63 - 1) and https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes (SequenceNumberIncrementTooLarge: 409 'The sequence number increment cannot be performed because it would result in overflow of the sequence number.')"
)
def test_sequence_numbers_are_0_to_2_63_minus_1(container, braw):
    b = page_blob(container)
    r = braw.put(
        bpath(container.container_name, "disk"),
        {"comp": "properties"},
        headers={"x-ms-sequence-number-action": "update", "x-ms-blob-sequence-number": "-1"},
    )
    assert_raw_error(r, 400, "InvalidHeaderValue")
    b.set_sequence_number(SequenceNumberAction.Update, (1 << 63) - 1)
    assert b.get_blob_properties().page_blob_sequence_number == (1 << 63) - 1
    expect_error(
        lambda: b.set_sequence_number(SequenceNumberAction.Increment),
        409,
        "SequenceNumberIncrementTooLarge",
    )


def test_resize_drops_pages_beyond_the_new_size(container):
    b = page_blob(container, size=8 * KIB)
    data = random_bytes(8 * KIB)
    b.upload_page(data, offset=0, length=8 * KIB)
    b.resize_blob(3 * KIB)
    assert b.get_blob_properties().size == 3 * KIB
    assert ranges(b) == ([(0, 3 * KIB - 1)], [])
    b.resize_blob(6 * KIB)
    got = b.download_blob().readall()
    assert got == data[: 3 * KIB] + bytes(3 * KIB)
    with pytest.raises(HttpResponseError) as ei:
        b.resize_blob(1000)
    assert ei.value.status_code == 400
    # Size is a page blob property.
    block = container.upload_blob("block", b"x")
    with pytest.raises(HttpResponseError) as ei:
        container.get_blob_client("block")._client.page_blob.resize(blob_content_length=512)
    assert ei.value.status_code == 400
    assert block.download_blob().readall() == b"x"


def test_snapshots_keep_their_pages(container):
    b = page_blob(container, size=16 * KIB)
    one, two = random_bytes(2 * KIB), random_bytes(KIB)
    b.upload_page(one, offset=0, length=2 * KIB)
    snap = b.create_snapshot()["snapshot"]
    b.upload_page(two, offset=KIB, length=KIB)
    old = container.get_blob_client("disk", snapshot=snap)
    assert old.download_blob(offset=0, length=2 * KIB).readall() == one
    assert b.download_blob(offset=0, length=2 * KIB).readall() == one[:KIB] + two
    assert ranges(old) == ([(0, 2 * KIB - 1)], [])
    assert old.get_blob_properties().size == 16 * KIB
    b.delete_blob(delete_snapshots="include")
    assert list(container.list_blobs(include=["snapshots"])) == []


def test_get_page_ranges_past_the_end_is_invalid_range(container, braw):
    page_blob(container, size=4 * KIB)
    r = braw.get(
        bpath(container.container_name, "disk"),
        {"comp": "pagelist"},
        headers={"x-ms-range": "bytes=5120-9215"},
    )
    assert r.status == 416, r


@pytest.mark.azurite_lacks("Get Page Ranges Diff (prevsnapshot)")
def test_snapshots_keep_their_pages_and_diff_against_the_base(container, braw):
    b = page_blob(container, size=16 * KIB)
    one, two = random_bytes(2 * KIB), random_bytes(KIB)
    b.upload_page(one, offset=0, length=2 * KIB)
    b.upload_page(one, offset=8 * KIB, length=2 * KIB)
    snap = b.create_snapshot()["snapshot"]
    b.upload_page(two, offset=4 * KIB, length=KIB)
    b.clear_page(offset=8 * KIB, length=KIB)
    # The snapshot still reads as it was.
    old = container.get_blob_client("disk", snapshot=snap)
    got = old.download_blob().readall()
    assert got[: 2 * KIB] == one and got[8 * KIB : 10 * KIB] == one
    assert ranges(old) == ([(0, 2 * KIB - 1), (8 * KIB, 10 * KIB - 1)], [])
    # What changed since the snapshot: pages written, pages cleared.
    written, cleared = ranges(b, previous_snapshot_diff=snap)
    assert written == [(4 * KIB, 5 * KIB - 1)]
    assert cleared == [(8 * KIB, 9 * KIB - 1)]
    # The previous snapshot named by URL (x-ms-previous-snapshot-url) instead.
    r = braw.get(
        bpath(container.container_name, "disk"),
        {"comp": "pagelist"},
        headers={"x-ms-previous-snapshot-url": f"{b.url}?snapshot={snap}"},
    )
    assert r.status == 200, r
    body = r.body.decode()
    assert "<PageRange><Start>4096</Start><End>5119</End></PageRange>" in body
    assert "<ClearRange><Start>8192</Start><End>9215</End></ClearRange>" in body
    # Between two snapshots; against a snapshot that does not exist.
    snap2 = b.create_snapshot()["snapshot"]
    newer = container.get_blob_client("disk", snapshot=snap2)
    assert ranges(newer, previous_snapshot_diff=snap) == (written, cleared)
    assert ranges(newer, previous_snapshot_diff=snap2) == ([], [])
    expect_error(
        lambda: b.get_page_ranges(previous_snapshot_diff="2001-01-01T00:00:00.0000000Z"),
        409,
        "PreviousSnapshotNotFound",
    )
    # Deleting the base with its snapshots frees both.
    b.delete_blob(delete_snapshots="include")
    assert list(container.list_blobs(include=["snapshots"])) == []


def test_conditions_and_leases_guard_page_writes(container):
    b = page_blob(container)
    etag = b.get_blob_properties().etag
    b.upload_page(bytes(512), offset=0, length=512, etag=etag, match_condition=__import__("azure.core").core.MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):
        b.upload_page(
            bytes(512), offset=0, length=512, etag=etag,
            match_condition=__import__("azure.core").core.MatchConditions.IfNotModified,
        )
    lease = b.acquire_lease()
    expect_error(lambda: b.upload_page(bytes(512), offset=0, length=512), 412, "LeaseIdMissing")
    b.upload_page(bytes(512), offset=0, length=512, lease=lease)
    b.clear_page(offset=0, length=512, lease=lease)
    lease.release()


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0's copy of a page blob shares the source's pages: clearing them in the source clears them in the copy. https://learn.microsoft.com/rest/api/storageservices/copy-blob (the destination is a copy of the source blob's content)"
)
def test_copy_of_a_page_blob_is_a_page_blob(container):
    b = page_blob(container, size=1 * MIB)
    data = random_bytes(4 * KIB)
    b.upload_page(data, offset=512 * KIB, length=4 * KIB)
    b.set_sequence_number(SequenceNumberAction.Update, 4)
    dest = container.get_blob_client("copy")
    dest.start_copy_from_url(b.url)
    p = dest.get_blob_properties()
    assert p.blob_type == BlobType.PAGEBLOB
    assert p.size == 1 * MIB
    assert p.copy.status == "success"
    assert ranges(dest) == ([(512 * KIB, 516 * KIB - 1)], [])
    assert dest.download_blob(offset=512 * KIB, length=4 * KIB).readall() == data
    # The copy is its own: writing the source leaves it alone.
    b.clear_page(offset=512 * KIB, length=4 * KIB)
    assert dest.download_blob(offset=512 * KIB, length=4 * KIB).readall() == data


@pytest.mark.azurite_lacks("Put Page From URL")
def test_put_page_from_url(container, braw):
    src = container.upload_blob("source", random_bytes(8 * KIB))
    sas = generate_blob_sas(
        container.account_name,
        container.container_name,
        "source",
        account_key=container.credential.account_key,
        permission=BlobSasPermissions(read=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    data = src.download_blob().readall()
    b = page_blob(container, size=16 * KIB)
    b.upload_pages_from_url(f"{src.url}?{sas}", offset=4 * KIB, length=2 * KIB, source_offset=KIB)
    got = b.download_blob(offset=4 * KIB, length=2 * KIB).readall()
    assert got == data[KIB : 3 * KIB]
    assert ranges(b) == ([(4 * KIB, 6 * KIB - 1)], [])
    # Source and destination ranges of different lengths.
    r = braw.put(
        bpath(container.container_name, "disk"),
        {"comp": "page"},
        headers={
            "x-ms-page-write": "update",
            "x-ms-range": "bytes=0-1023",
            "x-ms-source-range": "bytes=0-511",
            "x-ms-copy-source": f"{src.url}?{sas}",
        },
    )
    assert_raw_error(r, 400, "InvalidHeaderValue")
    # A source condition that fails.
    with pytest.raises(HttpResponseError) as ei:
        b.upload_pages_from_url(
            f"{src.url}?{sas}", offset=0, length=512, source_offset=0,
            source_etag='"nope"', source_match_condition=__import__("azure.core").core.MatchConditions.IfNotModified,
        )
    assert ei.value.status_code == 412
    assert ranges(b) == ([(4 * KIB, 6 * KIB - 1)], [])


def test_put_page_md5_is_checked(container, braw):
    b = page_blob(container)
    data = random_bytes(512)
    b.upload_page(data, offset=0, length=512, validate_content=True)
    r = braw.put(
        bpath(container.container_name, "disk"),
        {"comp": "page"},
        body=data,
        headers={
            "x-ms-page-write": "update",
            "x-ms-range": "bytes=512-1023",
            "content-md5": md5_b64(b"other"),
        },
    )
    assert_raw_error(r, 400, "Md5Mismatch")
    assert ranges(b) == ([(0, 511)], [])


def test_write_sas_can_put_pages_read_sas_cannot(container):
    b = page_blob(container)
    expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)

    def client(perm):
        sas = generate_blob_sas(
            container.account_name, container.container_name, "disk",
            account_key=container.credential.account_key, permission=perm, expiry=expiry,
        )
        from azure.storage.blob import BlobClient

        return BlobClient.from_blob_url(f"{b.url}?{sas}")

    client(BlobSasPermissions(write=True)).upload_page(bytes(512), offset=0, length=512)
    reader = client(BlobSasPermissions(read=True))
    assert ranges(reader) == ([(0, 511)], [])
    expect_error(
        lambda: reader.upload_page(bytes(512), offset=512, length=512),
        403,
        "AuthorizationPermissionMismatch",
    )


def read_sas(container, name, snapshot=None):
    return generate_blob_sas(
        container.account_name,
        container.container_name,
        name,
        snapshot=snapshot,
        account_key=container.credential.account_key,
        permission=BlobSasPermissions(read=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )


@pytest.mark.azurite_lacks("Incremental Copy Blob")
def test_incremental_copy_from_snapshots(container):
    src = page_blob(container, "vhd", size=8 * KIB)
    one, two = random_bytes(KIB), random_bytes(KIB)
    src.upload_page(one, offset=0, length=KIB)
    s1 = src.create_snapshot()["snapshot"]
    dest = container.get_blob_client("backup")
    r = dest.start_copy_from_url(
        f"{src.url}?snapshot={s1}&{read_sas(container, 'vhd', s1)}", incremental_copy=True
    )
    assert r["copy_status"] == "success"
    p = dest.get_blob_properties()
    assert p.blob_type == BlobType.PAGEBLOB
    assert p.size == 8 * KIB
    assert p.copy.status == "success"
    assert p.copy.incremental_copy is True
    d1 = p.copy.destination_snapshot
    assert d1
    # The copy is read through its snapshots; the blob itself is not readable.
    first = container.get_blob_client("backup", snapshot=d1)
    assert first.download_blob(offset=0, length=KIB).readall() == one
    expect_error(lambda: dest.download_blob().readall(), 409, "OperationNotAllowedOnIncrementalCopyBlob")
    expect_error(
        lambda: dest.upload_page(bytes(512), offset=0, length=512),
        409,
        "OperationNotAllowedOnIncrementalCopyBlob",
    )
    # The next copy brings the later snapshot; the earlier copy stays as it was.
    src.upload_page(two, offset=4 * KIB, length=KIB)
    s2 = src.create_snapshot()["snapshot"]
    dest.start_copy_from_url(
        f"{src.url}?snapshot={s2}&{read_sas(container, 'vhd', s2)}", incremental_copy=True
    )
    d2 = dest.get_blob_properties().copy.destination_snapshot
    assert d2 and d2 != d1
    second = container.get_blob_client("backup", snapshot=d2)
    assert second.download_blob(offset=4 * KIB, length=KIB).readall() == two
    assert ranges(first) == ([(0, KIB - 1)], [])
    assert ranges(second) == ([(0, KIB - 1), (4 * KIB, 5 * KIB - 1)], [])
    # An older snapshot, another blob, a source that is not a snapshot or not a page blob.
    expect_error(
        lambda: dest.start_copy_from_url(
            f"{src.url}?snapshot={s1}&{read_sas(container, 'vhd', s1)}", incremental_copy=True
        ),
        409,
        "IncrementalCopyOfEarlierSnapshotNotAllowed",
    )
    other = page_blob(container, "other")
    so = other.create_snapshot()["snapshot"]
    expect_error(
        lambda: dest.start_copy_from_url(
            f"{other.url}?snapshot={so}&{read_sas(container, 'other', so)}", incremental_copy=True
        ),
        409,
        "IncrementalCopyBlobMismatch",
    )
    fresh = container.get_blob_client("fresh")
    expect_error(
        lambda: fresh.start_copy_from_url(f"{src.url}?{read_sas(container, 'vhd')}", incremental_copy=True),
        409,
        "IncrementalCopySourceMustBeSnapshot",
    )
    block = container.upload_blob("block", b"x")
    sb = block.create_snapshot()["snapshot"]
    expect_error(
        lambda: fresh.start_copy_from_url(
            f"{block.url}?snapshot={sb}&{read_sas(container, 'block', sb)}", incremental_copy=True
        ),
        409,
        "InvalidSourceBlobType",
    )
    # It goes like any blob.
    dest.delete_blob(delete_snapshots="include")
    names = {b.name for b in container.list_blobs(include=["snapshots"])}
    assert "backup" not in names


def test_tag_conditions_guard_page_writes(container):
    b = page_blob(container, tags={"state": "open"})
    b.upload_page(bytes(512), offset=0, length=512, if_tags_match_condition="\"state\" = 'open'")
    expect_error(
        lambda: b.upload_page(
            bytes(512), offset=512, length=512, if_tags_match_condition="\"state\" = 'closed'"
        ),
        412,
        "ConditionNotMet",
    )
    assert ranges(b) == ([(0, 511)], [])


def test_page_blobs_have_no_tier_on_a_standard_account(container, braw):
    page_blob(container)
    r = braw.put(
        bpath(container.container_name, "disk"),
        {"comp": "tier"},
        headers={"x-ms-access-tier": "P10"},
    )
    assert r.status == 400, r
