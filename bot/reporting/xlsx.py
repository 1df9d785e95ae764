"""The .xlsx writers of the ledger's sheets: a streaming one written here (6–8× faster than
XlsxWriter and pyexcelerate on the same rows, see README "Benchmarks") and openpyxl's, for tests
and comparison. A `Sheet` is plain data: headers, typed rows, warning fills, a footer."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from bot.core.models import (
    WarnLevel,
)

Value = str | int | float | date | datetime | None

# Column widths in Excel character units (a Chinese character counts about 2).
_WIDTHS: dict[str, float] = {
    "序号": 6, "工单编号": 18, "登记日期": 11, "问题来源": 10, "所属乡镇/园区": 14,
    "企业名称": 26, "统一社会信用代码": 21, "行业": 12, "联系人": 9, "联系电话": 14,
    "问题领域": 12, "诉求类型": 9, "问题描述(摘要)": 40, "紧急程度": 9, "责任一米团": 20,
    "责任人": 9, "协办单位": 20, "交办时间": 17, "签收时间": 17, "首次联系企业时间": 17,
    "办结时限": 17, "当前状态": 10, "最新进展": 30, "办理结果": 30, "是否解决": 12,
    "办结日期": 11, "办理用时(工作日)": 10, "是否超期/超期天数": 18, "延期次数": 9,
    "退单次数": 9, "督办次数": 9, "领导批示": 20, "回访日期": 11, "企业评价": 9,
    "是否销号": 9, "销号日期": 11, "备注": 24, "超期工作日": 11, "是否通报": 9,
}  # fmt: skip


@dataclass(slots=True)
class Sheet:
    """One sheet: headers, rows of typed values, and per-row warning fills of one column."""

    name: str
    headers: Sequence[str]
    rows: list[list[Value]] = field(default_factory=list)
    levels: list[WarnLevel | None] = field(default_factory=list)
    fill_column: int | None = None
    percent_columns: frozenset[int] = frozenset()
    footer: str = ""

    def widths(self) -> list[float]:
        """Column widths in character units."""
        return [_WIDTHS.get(h, max(10.0, 2.2 * len(h))) for h in self.headers]


# -- openpyxl backend ----------------------------------------------------------------------------

FILL_COLORS = {WarnLevel.RED: "FFC7CE", WarnLevel.YELLOW: "FFEB9C", WarnLevel.GREEN: "C6EFCE"}
HEADER_COLOR = "D9E1F2"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_FORMAT = "0.0%"


def workbook(sheets: Sequence[Sheet]) -> Workbook:
    """The sheets as an openpyxl ``Workbook`` (slower than ``write_sheets``: for tests and
    comparison)."""
    wb = Workbook()
    wb.remove(wb.active)
    fills = {k: PatternFill("solid", fgColor="FF" + v) for k, v in FILL_COLORS.items()}
    header_fill = PatternFill("solid", fgColor="FF" + HEADER_COLOR)
    bold = Font(bold=True)
    for sheet in sheets:
        ws = wb.create_sheet(sheet.name)
        ws.append(list(sheet.headers))
        for cell in ws[1]:
            cell.font = bold
            cell.fill = header_fill
            cell.alignment = Alignment(horizontal="center", vertical="center")
        for r, row in enumerate(sheet.rows, 2):
            ws.append(row)
            for c, value in enumerate(row):
                if isinstance(value, datetime):
                    ws.cell(r, c + 1).number_format = DATETIME_FORMAT
                elif isinstance(value, date):
                    ws.cell(r, c + 1).number_format = DATE_FORMAT
                elif c in sheet.percent_columns and value is not None:
                    ws.cell(r, c + 1).number_format = PERCENT_FORMAT
            level = sheet.levels[r - 2] if r - 2 < len(sheet.levels) else None
            if sheet.fill_column is not None and level is not None:
                ws.cell(r, sheet.fill_column + 1).fill = fills[level]
        ws.append([])
        ws.append([sheet.footer])
        ws.freeze_panes = "A2"
        for c, width in enumerate(sheet.widths(), 1):
            ws.column_dimensions[get_column_letter(c)].width = width
    return wb


# -- streaming backend ---------------------------------------------------------------------------

_EPOCH = datetime(1899, 12, 30)
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Cell style indexes in _STYLES: 0 plain, 1 header, 2 date, 3 datetime, 4 percent, 5-7 fills.
_S_HEADER, _S_DATE, _S_DATETIME, _S_PERCENT = 1, 2, 3, 4
_S_FILL = {WarnLevel.RED: 5, WarnLevel.YELLOW: 6, WarnLevel.GREEN: 7}
_STYLES = (
    _XML + f"<styleSheet {_NS}>"
    '<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm"/>'
    '<numFmt numFmtId="166" formatCode="0.0%"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="等线"/><family val="2"/>'
    '<charset val="134"/></font>'
    '<font><b/><sz val="11"/><name val="等线"/><family val="2"/><charset val="134"/></font></fonts>'
    '<fills count="6"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    + "".join(
        f'<fill><patternFill patternType="solid"><fgColor rgb="FF{c}"/>'
        '<bgColor indexed="64"/></patternFill></fill>'
        for c in (*FILL_COLORS.values(), HEADER_COLOR)
    )
    + "</fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="8">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="5" borderId="0" xfId="0" applyFont="1" applyFill="1" '
    'applyAlignment="1"><alignment horizontal="center" vertical="center"/></xf>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="2" borderId="0" xfId="0" applyFill="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="3" borderId="0" xfId="0" applyFill="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="4" borderId="0" xfId="0" applyFill="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


class _SharedStrings:
    """The workbook's shared string table: each distinct text is stored once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.count = 0

    def cell(self, ref: str, text: str, style: int = 0) -> str:
        """A cell referring to ``text`` in the table."""
        idx = self.index.get(text)
        if idx is None:
            idx = self.index[text] = len(self.index)
        self.count += 1
        s = f' s="{style}"' if style else ""
        return f'<c r="{ref}"{s} t="s"><v>{idx}</v></c>'

    def xml(self) -> Iterator[str]:
        """``xl/sharedStrings.xml`` in chunks."""
        yield (_XML + f'<sst {_NS} count="{self.count}" uniqueCount="{len(self.index)}">')
        chunk: list[str] = []
        for text in self.index:
            chunk.append(f'<si><t xml:space="preserve">{escape(text)}</t></si>')
            if len(chunk) >= 5000:
                yield "".join(chunk)
                chunk = []
        yield "".join(chunk) + "</sst>"


def _sheet_xml(sheet: Sheet, sst: _SharedStrings) -> Iterator[str]:
    """The worksheet XML in chunks."""
    letters = [get_column_letter(c) for c in range(1, len(sheet.headers) + 1)]
    cols = "".join(
        f'<col min="{c}" max="{c}" width="{w:g}" customWidth="1"/>'
        for c, w in enumerate(sheet.widths(), 1)
    )
    header = "".join(sst.cell(f"{letters[i]}1", h, _S_HEADER) for i, h in enumerate(sheet.headers))
    yield (
        _XML + f'<worksheet {_NS} xmlns:r="{_REL_NS}">'
        '<sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
        f'<row r="1">{header}</row>'
    )
    fill_col = sheet.fill_column
    percent = sheet.percent_columns
    levels = sheet.levels
    index = sst.index
    epoch_day = _EPOCH.date()
    chunk: list[str] = []
    r = 1
    for r, row in enumerate(sheet.rows, 2):
        level = levels[r - 2] if r - 2 < len(levels) else None
        cells = [f'<row r="{r}">']
        strings = 0
        for c, value in enumerate(row):
            if value is None or value == "":
                continue
            style = _S_FILL[level] if c == fill_col and level is not None else 0
            s = f' s="{style}"' if style else ""
            if isinstance(value, str):
                idx = index.get(value)
                if idx is None:
                    idx = index[value] = len(index)
                strings += 1
                cells.append(f'<c r="{letters[c]}{r}"{s} t="s"><v>{idx}</v></c>')
                continue
            if isinstance(value, datetime):
                number: float = (value - _EPOCH).total_seconds() / 86400
                s = s or f' s="{_S_DATETIME}"'
            elif isinstance(value, date):
                number = (value - epoch_day).days
                s = s or f' s="{_S_DATE}"'
            else:
                number = value
                if c in percent:
                    s = f' s="{_S_PERCENT}"'
            cells.append(f'<c r="{letters[c]}{r}"{s}><v>{number!r}</v></c>')
        cells.append("</row>")
        sst.count += strings
        chunk.append("".join(cells))
        if len(chunk) >= 2000:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)
    footer_row = r + 2
    yield (
        f'<row r="{footer_row}">{sst.cell(f"A{footer_row}", sheet.footer)}</row>'
        "</sheetData></worksheet>"
    )


def _package(sheets: Sequence[Sheet], exporter: str, now: datetime) -> dict[str, str]:
    n = len(sheets)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, n + 1)
    )
    sheet_list = "".join(
        f'<sheet name="{escape(s.name)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, s in enumerate(sheets, 1)
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, n + 1)
    )
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "[Content_Types].xml": _XML
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f"{overrides}</Types>",
        "_rels/.rels": _XML + f'<Relationships xmlns="{_PKG_REL_NS}">'
        f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        "</Relationships>",
        "docProps/core.xml": _XML
        + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>问题台账</dc:title><dc:creator>{escape(exporter)}</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        "</cp:coreProperties>",
        "xl/workbook.xml": _XML + f'<workbook {_NS} xmlns:r="{_REL_NS}">'
        f"<sheets>{sheet_list}</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": _XML + f'<Relationships xmlns="{_PKG_REL_NS}">{rels}'
        f'<Relationship Id="rId{n + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId{n + 2}" Type="{_REL_NS}/sharedStrings" '
        'Target="sharedStrings.xml"/>'
        "</Relationships>",
        "xl/styles.xml": _STYLES,
    }


def write_sheets(
    sheets: Sequence[Sheet], path: Path | str, *, exporter_name: str, now: datetime
) -> Path:
    """Stream already built ``sheets`` into an .xlsx file at ``path``.

    No Zip64 entries (some Excel builds reject them), so one sheet's XML must stay under 2 GiB:
    about a million tickets.
    """
    out = Path(path)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, text in _package(sheets, exporter_name, now).items():
            zf.writestr(name, text)
        sst = _SharedStrings()
        for i, sheet in enumerate(sheets, 1):
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w") as fh:
                for part in _sheet_xml(sheet, sst):
                    fh.write(part.encode("utf-8"))
        with zf.open("xl/sharedStrings.xml", "w") as fh:
            for part in sst.xml():
                fh.write(part.encode("utf-8"))
    return out
