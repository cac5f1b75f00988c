"""Collections and their documents: the unit that becomes one adapter.

Every function takes the caller's workspace id and never returns another workspace's rows:
a foreign id is indistinguishable from a missing one (404)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.collections.ingest import IngestedDocument, IngestError, clean_filename, ingest_file
from service.core.errors import Unprocessable
from service.core.owned import get_owned
from service.core.storage import Storage
from service.db.tables import Collection, Document, Passage, new_id, utcnow
from service.serving.icl_context import PassageRef


def create_collection(
    session: Session, workspace_id: str, name: str, description: str
) -> Collection:
    collection = Collection(workspace_id=workspace_id, name=name, description=description)
    session.add(collection)
    session.flush()
    return collection


def list_collections(session: Session, workspace_id: str) -> list[Collection]:
    return list(
        session.scalars(
            select(Collection)
            .where(Collection.workspace_id == workspace_id)
            .order_by(Collection.created_at)
        )
    )


def get_collection(session: Session, workspace_id: str, collection_id: str) -> Collection:
    return get_owned(session, Collection, collection_id, workspace_id, "collection")


def collection_stats(session: Session, collection_id: str) -> dict[str, int]:
    row = session.execute(
        select(
            func.count(Document.id),
            func.coalesce(func.sum(Document.token_count), 0),
            func.coalesce(func.sum(Document.sentence_count), 0),
        ).where(Document.collection_id == collection_id)
    ).one()
    return {"document_count": row[0], "token_count": row[1], "sentence_count": row[2]}


def delete_collection(
    session: Session, storage: Storage, workspace_id: str, collection_id: str
) -> None:
    collection = get_collection(session, workspace_id, collection_id)
    session.delete(collection)
    session.flush()
    storage.delete_tree(f"workspaces/{workspace_id}/collections/{collection_id}")


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass
class UploadOutcome:
    document: Document
    created: bool  # False when identical content was already in the collection


def add_documents(
    session: Session,
    storage: Storage,
    workspace_id: str,
    collection_id: str,
    uploads: list[Upload],
    *,
    count_tokens: Callable[[str], int],
    max_bytes: int,
    max_docx_uncompressed: int,
) -> list[UploadOutcome]:
    """Ingest every upload, then store all of them or none.

    Every file is extracted before anything is written, so one bad file in a multi-file upload
    leaves the collection as it was; the error names the file and says nothing was stored."""
    collection = get_collection(session, workspace_id, collection_id)
    if not uploads:
        raise Unprocessable("no files in the upload: send one or more `files` parts")
    ingested = _ingest_all(
        uploads,
        count_tokens=count_tokens,
        max_bytes=max_bytes,
        max_docx_uncompressed=max_docx_uncompressed,
    )
    # Rows are inserted in text-hash order, so two concurrent uploads that share files take
    # the unique index's locks in one order (PostgreSQL would otherwise deadlock them); each row's
    # created_at still follows the upload's file order, which is the collection's reading order.
    now = utcnow()
    outcomes: list[UploadOutcome | None] = [None] * len(ingested)
    written: list[str] = []
    seen: dict[str, Document] = {}
    order = sorted(range(len(ingested)), key=lambda i: ingested[i][1].sha256)
    try:
        for i in order:
            upload, doc = ingested[i]
            existing = seen.get(doc.sha256) or _document_with_text(session, collection.id, doc)
            if existing is None:
                row = _store_document(
                    session,
                    storage,
                    workspace_id,
                    collection.id,
                    upload,
                    doc,
                    created_at=now + timedelta(microseconds=i),
                    count_tokens=count_tokens,
                    written=written,
                )
                if row is not None:
                    seen[doc.sha256] = row
                    outcomes[i] = UploadOutcome(row, created=True)
                    continue
                # A concurrent upload of the same text committed first: answer as a duplicate.
                existing = _document_with_text(session, collection.id, doc)
                assert existing is not None
            outcomes[i] = UploadOutcome(existing, created=False)
        session.flush()
    except BaseException:
        for key in written:
            storage.delete_tree(key)
        raise
    return [o for o in outcomes if o is not None]


def _ingest_all(
    uploads: list[Upload],
    *,
    count_tokens: Callable[[str], int],
    max_bytes: int,
    max_docx_uncompressed: int,
) -> list[tuple[Upload, IngestedDocument]]:
    """Every upload extracted, or the first file's error (saying nothing was stored)."""
    ingested: list[tuple[Upload, IngestedDocument]] = []
    for upload in uploads:
        try:
            doc = ingest_file(
                upload.data,
                upload.filename,
                count_tokens=count_tokens,
                max_bytes=max_bytes,
                max_docx_uncompressed=max_docx_uncompressed,
            )
        except IngestError as exc:
            note = (
                f" None of the {len(uploads)} files in this upload were stored."
                if len(uploads) > 1
                else ""
            )
            raise _ingest_error_to_api(exc, note) from exc
        ingested.append((upload, doc))
    return ingested


def _store_document(
    session: Session,
    storage: Storage,
    workspace_id: str,
    collection_id: str,
    upload: Upload,
    doc: IngestedDocument,
    *,
    created_at: datetime,
    count_tokens: Callable[[str], int],
    written: list[str],
) -> Document | None:
    """The new document's row with its files and passages (its storage key appended to
    `written` before any file is), or None when the collection holds its text already."""
    doc_id = new_id("doc")
    storage_key = f"workspaces/{workspace_id}/collections/{collection_id}/{doc_id}"
    inserted = _insert_unless_present(
        session,
        id=doc_id,
        created_at=created_at,
        workspace_id=workspace_id,
        collection_id=collection_id,
        filename=clean_filename(upload.filename),
        media_type=doc.media_type,
        text_encoding=doc.encoding,
        size_bytes=len(upload.data),
        content_sha256=doc.content_sha256,
        text_sha256=doc.sha256,
        char_count=len(doc.text),
        passage_count=len(doc.passages),
        sentence_count=doc.sentence_count,
        token_count=doc.token_count,
        storage_key=storage_key,
    )
    if not inserted:
        return None
    written.append(storage_key)
    storage.put_bytes(f"{storage_key}/original", upload.data)
    storage.put_text(f"{storage_key}/text.txt", doc.text)
    for p in doc.passages:
        session.add(
            Passage(
                document_id=doc_id,
                index=p.index,
                text=p.text,
                sentences=list(p.sentences),
                token_count=count_tokens(p.text),
            )
        )
    row = session.get(Document, doc_id)
    assert row is not None
    return row


def _document_with_text(
    session: Session, collection_id: str, doc: IngestedDocument
) -> Document | None:
    return session.scalar(
        select(Document).where(
            Document.collection_id == collection_id, Document.text_sha256 == doc.sha256
        )
    )


def _insert_unless_present(session: Session, **values: object) -> bool:
    """INSERT the document row unless the collection already holds its text (the unique
    (collection_id, text_sha256) index): ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike,
    so the loser of two identical concurrent uploads waits for the winner instead of failing.
    True when the row was inserted."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = (
        insert(Document)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["collection_id", "text_sha256"])
        .returning(Document.id)
    )
    return session.scalar(stmt) is not None


def list_documents(session: Session, workspace_id: str, collection_id: str) -> list[Document]:
    get_collection(session, workspace_id, collection_id)
    return list(
        session.scalars(
            select(Document)
            .where(Document.collection_id == collection_id)
            .order_by(Document.created_at, Document.id)
        )
    )


def get_document(session: Session, workspace_id: str, document_id: str) -> Document:
    return get_owned(session, Document, document_id, workspace_id, "document")


def document_passages(session: Session, document_id: str) -> list[Passage]:
    return list(
        session.scalars(
            select(Passage).where(Passage.document_id == document_id).order_by(Passage.index)
        )
    )


def collection_passage_refs(
    session: Session, workspace_id: str, collection_id: str
) -> list[PassageRef]:
    """Every passage of a collection, documents in upload order, as the ICL policy takes them
    (service.serving.icl_context): the title is the document's file name."""
    get_collection(session, workspace_id, collection_id)
    rows = session.execute(
        select(Document.id, Document.filename, Passage.index, Passage.text, Passage.token_count)
        .join(Passage, Passage.document_id == Document.id)
        .where(Document.collection_id == collection_id)
        .order_by(Document.created_at, Document.id, Passage.index)
    )
    return [
        PassageRef(doc_id, title, index, text, tokens)
        for doc_id, title, index, text, tokens in rows
    ]


def delete_document(
    session: Session, storage: Storage, workspace_id: str, document_id: str
) -> None:
    doc = get_document(session, workspace_id, document_id)
    key = doc.storage_key
    session.delete(doc)
    session.flush()
    storage.delete_tree(key)


def _ingest_error_to_api(exc: IngestError, note: str) -> Exception:
    from service.core import errors

    cls = {413: errors.PayloadTooLarge, 415: errors.UnsupportedMediaType}.get(
        exc.status_code, errors.Unprocessable
    )
    return cls(exc.message + note, code=exc.code)
