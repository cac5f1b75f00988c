from __future__ import annotations

from pydantic import BaseModel, Field

from service.core.schemas import PublicModel, Timestamp


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class CollectionPublic(PublicModel):
    id: str
    name: str
    description: str
    created_at: Timestamp
    document_count: int = 0
    token_count: int = 0
    sentence_count: int = 0


class CollectionsPublic(BaseModel):
    data: list[CollectionPublic]


class DocumentPublic(PublicModel):
    id: str
    collection_id: str
    filename: str
    media_type: str
    text_encoding: str | None = Field(
        default=None,
        description="How a text or Markdown file was read: utf-8, utf-16, utf-32 (by its "
        "byte-order mark) or windows-1252 (the one fallback for a file that is not UTF-8); null "
        "for PDF, DOCX and HTML, and for documents stored before this was recorded.",
    )
    size_bytes: int
    content_sha256: str
    char_count: int
    passage_count: int
    sentence_count: int
    token_count: int
    created_at: Timestamp
    duplicate: bool = Field(
        default=False, description="True when identical content was already in the collection."
    )


class DocumentsPublic(BaseModel):
    data: list[DocumentPublic]


class PassagePublic(PublicModel):
    index: int
    text: str
    sentences: list[str]
    token_count: int


class DocumentDetail(DocumentPublic):
    text: str
    passages: list[PassagePublic]
