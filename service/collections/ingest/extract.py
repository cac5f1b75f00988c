"""Text out of each supported format, with one maintained library per format.

Every extractor returns plain text whose paragraphs are separated by blank lines; the caller
normalizes it (see normalize.py). Damaged input becomes an IngestError, never a stack trace."""

from __future__ import annotations

import io
import logging
import re
import statistics
import zipfile

import docx
import pypdf
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from docx.table import Table
from docx.text.paragraph import Paragraph
from markdown_it import MarkdownIt

from service.collections.ingest.decode import TextDecodeError, decode_text
from service.collections.ingest.detect import (
    APPLICATION_PDF,
    DOCX,
    SUPPORTED_NAMES,
    TEXT_HTML,
    TEXT_MARKDOWN,
    TEXT_PLAIN,
)
from service.collections.ingest.errors import IngestError, clean_filename

log = logging.getLogger(__name__)

DEFAULT_MAX_DOCX_UNCOMPRESSED = 50_000_000
# Deflate tops out near 1032:1; real Word XML compresses 5-30x. Above this a member is a bomb.
MAX_DOCX_MEMBER_RATIO = 200
_RATIO_CHECK_MIN_BYTES = 1 << 20  # tiny members can have any ratio without harm


def extract_text(
    data: bytes,
    media_type: str,
    filename: str,
    *,
    max_docx_uncompressed: int = DEFAULT_MAX_DOCX_UNCOMPRESSED,
) -> str:
    """Return the text of ``data`` read as ``media_type`` (from :func:`detect_media_type`),
    paragraphs separated by blank lines, not yet normalized.

    Raises IngestError: 422 ``corrupt_file`` (a PDF or DOCX its library cannot read),
    ``no_text_layer`` (a PDF without extractable text), ``encrypted_file`` (a PDF that needs a
    password), ``decompression_bomb`` (a DOCX whose members would inflate beyond
    ``max_docx_uncompressed`` bytes in total or at an absurd ratio, checked before
    decompressing; a PDF stream over pypdf's output limit), ``invalid_encoding`` (a text or
    Markdown file that is neither UTF-8 nor Windows-1252, see decode.py); 415
    ``unsupported_type`` for a media type this module does not read."""
    name = clean_filename(filename)
    if media_type == TEXT_PLAIN:
        return _decoded(data, name)
    if media_type == TEXT_MARKDOWN:
        return markdown_to_text(_decoded(data, name))
    if media_type == TEXT_HTML:
        return html_to_text(data)
    if media_type == APPLICATION_PDF:
        return _pdf_text(data, name)
    if media_type == DOCX:
        return _docx_text(data, name, max_docx_uncompressed)
    raise IngestError(
        415,
        "unsupported_type",
        f"'{name}' has type {media_type!r}, which cannot be read. Supported: {SUPPORTED_NAMES}.",
        name,
    )


def _decoded(data: bytes, name: str) -> str:
    try:
        return decode_text(data)
    except TextDecodeError as exc:
        raise IngestError(422, "invalid_encoding", f"'{name}' {exc}", name) from exc


# ---------------------------------------------------------------------------- HTML and Markdown

# Never content: code, styling, navigation, embedded objects, the <head>.
_DROP_TAGS = [
    "script", "style", "noscript", "template", "nav", "head", "svg", "canvas", "iframe",
    "object", "embed", "button", "select", "datalist",
]  # fmt: skip
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "html", "li", "main", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
}  # fmt: skip
_CELL_TAGS = ["td", "th"]
_SPACE_RUN = re.compile(r"\s+")


def html_to_text(html: bytes | str) -> str:
    """The visible text of an HTML document: scripts, styles, navigation and the head dropped;
    each block element (paragraph, heading, list item, table row, ...) its own paragraph; source
    line breaks inside a block are spaces, as a browser shows them; <br> is a line break.
    Bytes are decoded as the document declares (BOM, <meta charset>), else detected."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    # Collapse source whitespace first, so the separators added below are the only breaks.
    for string in soup.find_all(string=True):
        # Exactly NavigableString: its subclasses (doctype, CDATA, ...) are not visible text.
        if type(string) is not NavigableString or string.find_parent("pre") is not None:
            continue
        string.replace_with(_SPACE_RUN.sub(" ", str(string)))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(True):
        if not isinstance(tag, Tag):
            continue
        if tag.name in _BLOCK_TAGS:
            tag.insert_before("\n\n")
            tag.insert_after("\n\n")
        elif tag.name in _CELL_TAGS and tag.find_previous_sibling(_CELL_TAGS) is not None:
            tag.insert_before(" | ")  # between the cells of a row, as in the DOCX extractor
    return soup.get_text()


def markdown_to_text(markdown: str) -> str:
    """The text of a Markdown document without its syntax: rendered with CommonMark (plus
    tables and strikethrough), then read back as HTML, so paragraphs, headings and list items
    stay separate paragraphs and raw HTML inside the Markdown is cleaned the same way."""
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return html_to_text(renderer.render(markdown))


# ---------------------------------------------------------------------------------------- PDF

_SENTENCE_END = (".", "!", "?", ":", '."', ".'", '?"', '!"', ".)", ".”", "?”", "!”")


def _pdf_text(data: bytes, name: str) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise IngestError(
                422,
                "encrypted_file",
                f"'{name}' is a password-protected PDF; remove the password and upload it again.",
                name,
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except pypdf.errors.LimitReachedError as exc:
        # pypdf caps what one stream may inflate to (75 MB by default) and stops there.
        raise IngestError(
            422,
            "decompression_bomb",
            f"'{name}' is a PDF with a stream that inflates beyond pypdf's safety limit "
            f"({_short(exc)}); refused.",
            name,
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a parser of untrusted bytes fails in many ways
        log.info("pypdf could not read %r: %r", name, exc)
        raise IngestError(
            422,
            "corrupt_file",
            f"'{name}' is a damaged PDF that cannot be read ({_short(exc)}).",
            name,
        ) from exc
    if not pages:
        raise IngestError(422, "corrupt_file", f"'{name}' is a PDF without pages.", name)
    if not any(page.strip() for page in pages):
        raise IngestError(
            422,
            "no_text_layer",
            f"'{name}' is a PDF with no text layer ({len(pages)} page(s) of images or drawings, "
            "e.g. a scan); run OCR on it first or upload the text.",
            name,
        )
    # Pages joined by a line break, so a sentence that runs over a page break stays whole.
    return reflow_pdf_lines("\n".join(page.strip("\n") for page in pages))


def _opens_without_password(reader: pypdf.PdfReader) -> bool:
    # An owner password alone (printing or copying locked) leaves the user password empty.
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - an unknown or unsupported cipher also means "locked"
        return False


def reflow_pdf_lines(text: str) -> str:
    """Restore the paragraph breaks PDF text extraction loses: a line that ends a sentence, or
    a short line before one that starts with a capital (a heading), is much shorter than the
    page's full lines, so a blank line follows it. Other line breaks stay single."""
    lines = text.split("\n")
    lengths = [len(line.strip()) for line in lines if line.strip()]
    if len(lengths) < 3:
        return text
    full = statistics.quantiles(lengths, n=10)[-1]  # 90th percentile: a full line
    out: list[str] = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        out.append(line)
        stripped, nxt = line.strip(), following.lstrip()
        if not stripped or not nxt:
            continue
        short = len(stripped) < 0.7 * full
        ends_sentence = stripped.endswith(_SENTENCE_END)
        heading = not ends_sentence and nxt[0].isupper() and len(stripped) < 80
        if short and (ends_sentence or heading):
            out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------- DOCX


def check_docx_archive(data: bytes, name: str, max_uncompressed: int) -> None:
    """Refuse a DOCX package that would inflate beyond ``max_uncompressed`` bytes in total, or
    holds a member compressed at an absurd ratio, by the sizes its zip directory declares,
    before anything is decompressed. Then inflate every member in 1 MB chunks to check it
    against its declared size and CRC: zipfile's one-shot read() (python-docx's) stops only
    after inflating all of a member's compressed data, so a member that understates its size
    must be caught here, with bounded memory, before python-docx reads it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            _check_declared_sizes(members, name, max_uncompressed)
            for member in members:
                with archive.open(member) as stream:
                    while stream.read(1 << 20):
                        pass
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged archives fail in many ways
        raise IngestError(
            422,
            "corrupt_file",
            f"'{name}' is a damaged Word (.docx) file: its zip structure, sizes or checksums "
            f"are wrong ({_short(exc)}).",
            name,
        ) from exc


def _check_declared_sizes(members: list[zipfile.ZipInfo], name: str, limit: int) -> None:
    total = sum(member.file_size for member in members)
    if total > limit:
        raise IngestError(
            422,
            "decompression_bomb",
            f"'{name}' would decompress to {total:,} bytes, over the limit of {limit:,}; "
            "refused without decompressing it.",
            name,
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= _RATIO_CHECK_MIN_BYTES and ratio > MAX_DOCX_MEMBER_RATIO:
            raise IngestError(
                422,
                "decompression_bomb",
                f"'{name}' holds a member that is compressed {ratio:,.0f}:1 (over "
                f"{MAX_DOCX_MEMBER_RATIO}:1), a decompression bomb; refused without "
                "decompressing it.",
                name,
            )


def _docx_text(data: bytes, name: str, max_uncompressed: int) -> str:
    check_docx_archive(data, name, max_uncompressed)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [_docx_block_text(block) for block in document.iter_inner_content()]
    except ValueError as exc:
        if "content type" in str(exc):
            # python-docx refuses .docm/.dotx packages by their main part's content type.
            raise IngestError(
                415,
                "unsupported_type",
                f"'{name}' is a macro-enabled or template Word file, not a .docx document; "
                "save it as .docx and upload it again.",
                name,
            ) from exc
        raise _corrupt_docx(name, exc) from exc
    except Exception as exc:  # noqa: BLE001 - zip, XML and package errors all mean damage
        raise _corrupt_docx(name, exc) from exc
    return "\n\n".join(block for block in blocks if block.strip())


def _docx_block_text(block: Paragraph | Table) -> str:
    if isinstance(block, Paragraph):
        return block.text
    rows = []
    for row in block.rows:
        cells, seen = [], set()
        for cell in row.cells:
            # A merged cell appears once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        rows.append(" | ".join(c for c in cells if c))
    return "\n\n".join(row for row in rows if row)


def _corrupt_docx(name: str, exc: Exception) -> IngestError:
    log.info("python-docx could not read %r: %r", name, exc)
    return IngestError(
        422,
        "corrupt_file",
        f"'{name}' is a damaged Word (.docx) file that cannot be read ({_short(exc)}).",
        name,
    )


def _short(exc: Exception) -> str:
    """A one-line, bounded description of a library error for a user-facing message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"
