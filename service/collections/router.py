from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from service.collections import records as svc
from service.collections.schemas import (
    CollectionCreate,
    CollectionPublic,
    CollectionsPublic,
    DocumentDetail,
    DocumentPublic,
    DocumentsPublic,
    PassagePublic,
)
from service.core.deps import CurrentWorkspace, RuntimeDep, SessionDep, audited
from service.core.errors import PayloadTooLarge
from service.core.openapi import errors

router = APIRouter(tags=["collections"])


def _public(session: SessionDep, collection) -> CollectionPublic:  # type: ignore[no-untyped-def]
    return CollectionPublic.model_validate(
        {
            **CollectionPublic.model_validate(collection).model_dump(),
            **svc.collection_stats(session, collection.id),
        }
    )


@router.post("/v1/collections", status_code=status.HTTP_201_CREATED)
def post_collection(
    body: CollectionCreate, session: SessionDep, workspace: CurrentWorkspace
) -> CollectionPublic:
    collection = svc.create_collection(session, workspace.id, body.name, body.description)
    session.commit()
    return _public(session, collection)


@router.get("/v1/collections")
def get_collections(session: SessionDep, workspace: CurrentWorkspace) -> CollectionsPublic:
    return CollectionsPublic(
        data=[_public(session, c) for c in svc.list_collections(session, workspace.id)]
    )


@router.get("/v1/collections/{collection_id}")
def get_collection(
    collection_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> CollectionPublic:
    return _public(session, svc.get_collection(session, workspace.id, collection_id))


@router.delete(
    "/v1/collections/{collection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited("collection.delete", "collection", "collection_id")],
)
def delete_collection(
    collection_id: str, session: SessionDep, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> None:
    svc.delete_collection(session, runtime.storage, workspace.id, collection_id)
    session.commit()


@router.post(
    "/v1/collections/{collection_id}/documents",
    status_code=status.HTTP_201_CREATED,
    responses=errors(413, 415),
)
async def post_documents(
    collection_id: str,
    files: Annotated[list[UploadFile], File(description="One or more documents.")],
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
) -> DocumentsPublic:
    """Store documents (PDF, DOCX, HTML, Markdown, text), all or none: one bad file refuses the
    upload and names it. Identical text already in the collection (sent twice, or by two uploads
    at once) is answered with the stored document and `duplicate: true`. Text and Markdown must
    be UTF-8 (a byte-order mark for UTF-16/32 is honoured); a file that is not is read as
    Windows-1252 when every byte is a Windows-1252 character and nothing in it reads as UTF-8,
    else refused (422 invalid_encoding, naming the first bad byte). `text_encoding` says which."""
    limit = runtime.settings.max_upload_bytes
    uploads = []
    for f in files:
        # Read at most limit+1 bytes, so an oversized file is refused without holding all of it.
        data = await f.read(limit + 1)
        if len(data) > limit:
            note = " None of the files in this upload were stored." if len(files) > 1 else ""
            raise PayloadTooLarge(
                f"{f.filename or 'upload'}: larger than the {limit} byte upload limit.{note}"
            )
        uploads.append(svc.Upload(filename=f.filename or "upload", data=data))

    def work() -> list[svc.UploadOutcome]:
        outcomes = svc.add_documents(
            session,
            runtime.storage,
            workspace.id,
            collection_id,
            uploads,
            count_tokens=runtime.count_tokens,
            max_bytes=limit,
            max_docx_uncompressed=runtime.settings.max_docx_uncompressed_bytes,
        )
        session.commit()
        return outcomes

    outcomes = await run_in_threadpool(work)
    return DocumentsPublic(
        data=[
            DocumentPublic.model_validate(o.document).model_copy(
                update={"duplicate": not o.created}
            )
            for o in outcomes
        ]
    )


@router.get("/v1/collections/{collection_id}/documents")
def get_documents(
    collection_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> DocumentsPublic:
    docs = svc.list_documents(session, workspace.id, collection_id)
    return DocumentsPublic(data=[DocumentPublic.model_validate(d) for d in docs])


@router.get("/v1/documents/{document_id}")
def get_document(
    document_id: str, session: SessionDep, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> DocumentDetail:
    doc = svc.get_document(session, workspace.id, document_id)
    passages = svc.document_passages(session, doc.id)
    return DocumentDetail(
        **DocumentPublic.model_validate(doc).model_dump(),
        text=runtime.storage.read_text(f"{doc.storage_key}/text.txt"),
        passages=[PassagePublic.model_validate(p) for p in passages],
    )


@router.delete(
    "/v1/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[audited("document.delete", "document", "document_id")],
)
def delete_document(
    document_id: str, session: SessionDep, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> None:
    svc.delete_document(session, runtime.storage, workspace.id, document_id)
    session.commit()
