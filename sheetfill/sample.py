"""Deterministic generator of sample bundles shaped exactly like Hotpass inputs, with ground truth.

Each bundle is a zip of three workbooks (seven sheets) holding the same South African aviation
organisations, captured messily the way real sheets are: spelling and suffix drift between
sources, emails with capitals, spaces and `mailto:`, phones in local and international forms,
websites with and without scheme, province abbreviations, blank and invalid rows. Names vary the hard
ways too: a leading "The", a space typed in the wrong place, a trading name after "t/a" or in
brackets, and different organisations whose names differ only in word order or by one letter (kept
apart only by their website / e-mail domain); no two organisations share an exact name by chance.
Contact rows of the Contact Database often have a blank or zero C_ID (an uncached lookup formula),
some e-mails are stand-ins (unknown+N@example.com), and some organisations write from another
domain than their website. The ground truth (which source rows are the same organisation, and its
clean values) is written beside the zips, never inside them.

    python -m sheetfill.sample --out archives --start 2025-09-29 --days 3 --versions v1 v2
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import random
import re
import zipfile
from pathlib import Path

SACAA_HEADER = [
    "Name of Organisation",
    "Province",
    "Status",
    "Website URL",
    "Contact Person",
    "Contact Number",
    "Contact Email Address",
]
REACHOUT, CONTACT, SACAA = (
    "Reachout Database.xlsx",
    "Contact Database.xlsx",
    "SACAA Flight Schools - Refined copy__CLEANED.xlsx",
)
SHEETS = {  # workbook -> sheet -> (columns, default rows); "" is a blank header (pandas: Unnamed: N)
    REACHOUT: {
        "Organisation": (
            [
                "Organisation Name",
                "ID",
                "Reachout Date",
                "Recent_Touch_Ind",
                "Area",
                "Distance",
                "Type",
                "Website",
                "Address",
                "Planes",
                "Description Type",
                "Notes",
                "Open Questions",
            ],
            1034,
        ),
        "Contact Info": (
            [
                "ID",
                "Organisation Name",
                "Reachout Date",
                "Firstname",
                "Surname",
                "Position",
                "Phone",
                "WhatsApp",
                "Email",
                "Invalid",
                "",
            ],
            176,
        ),
    },
    CONTACT: {
        "Company_Cat": (
            [
                "C_ID",
                "Company",
                "QuickNooks_Name",
                "Last_Order_Date",
                "Category",
                "Strat",
                "Priority",
                "Status",
                "LoadDate",
                "Checked",
                "Website",
            ],
            425,
        ),
        "Company_Contacts": (
            ["C_ID", "Company", "Status", "FirstName", "Surname", "Position", "Cellnumber", "Email", "Landline"],
            69,
        ),
        "Company_Addresses": (["C_ID", "Company", "Type", "Airport", ""], 36),
        "10-10-25 Capture": (
            [
                "",
                "School",
                "Contact person (role)",
                "Phone",
                "Email",
                "Addresses",
                "Planes",
                "Website",
                "Description",
                "Type",
            ],
            30,
        ),
    },
    SACAA: {
        "Cleaned": (SACAA_HEADER, 188),
    },
}
PROVINCES = {  # canonical -> spellings seen in captures
    "Gauteng": ["Gauteng", "GP", "gauteng ", "GAUTENG"],
    "Western Cape": ["Western Cape", "W Cape", "WC", "western cape"],
    "KwaZulu-Natal": ["KwaZulu-Natal", "KZN", "Kwazulu Natal"],
    "Eastern Cape": ["Eastern Cape", "EC", "E Cape"],
    "Free State": ["Free State", "FS", "free state"],
    "Limpopo": ["Limpopo", "LP"],
    "Mpumalanga": ["Mpumalanga", "MP"],
    "North West": ["North West", "NW", "north-west"],
    "Northern Cape": ["Northern Cape", "NC"],
}
CITIES = {
    "Gauteng": ["Johannesburg", "Pretoria", "Midrand", "Benoni"],
    "Western Cape": ["Cape Town", "Stellenbosch"],
    "KwaZulu-Natal": ["Durban", "Pietermaritzburg"],
    "Eastern Cape": ["Gqeberha", "East London"],
    "Free State": ["Bloemfontein"],
    "Limpopo": ["Polokwane"],
    "Mpumalanga": ["Nelspruit"],
    "North West": ["Rustenburg", "Brits"],
    "Northern Cape": ["Kimberley", "Upington"],
}
AIRPORTS = [
    "FALA Lanseria",
    "FAGC Grand Central",
    "FAWB Wonderboom",
    "FACT Cape Town",
    "FAVG Virginia",
    "FABL Bloemfontein",
    "FAKZ Kroonstad",
    "FAPE Port Elizabeth",
]
WORDS = [
    "Blue",
    "Sky",
    "Eagle",
    "Falcon",
    "Kestrel",
    "Summit",
    "Horizon",
    "Zenith",
    "Apex",
    "Cape",
    "Highveld",
    "Lowveld",
    "Karoo",
    "Savanna",
    "Baobab",
    "Protea",
    "Springbok",
    "Vector",
    "Delta",
    "Condor",
    "Phoenix",
    "Orbit",
    "Aerial",
    "Sun",
    "Star",
    "Table",
    "Mountain",
    "Valley",
    "River",
    "Coastal",
]
KINDS = [
    "Aviation",
    "Flight School",
    "Aero Club",
    "Flying Academy",
    "Air Services",
    "Aviation Academy",
    "Helicopters",
    "Flight Training",
]
FIRST = [
    "Thabo",
    "Johan",
    "Sipho",
    "Anele",
    "Pieter",
    "Lerato",
    "Ayesha",
    "Michael",
    "Naledi",
    "Ruan",
    "Zanele",
    "David",
    "Fatima",
    "Kobus",
    "Lindiwe",
    "Sarah",
    "Jacques",
    "Nomsa",
]
LAST = [
    "Nkosi",
    "van der Merwe",
    "Dlamini",
    "Botha",
    "Naidoo",
    "Mokoena",
    "Smith",
    "Pretorius",
    "Khumalo",
    "Venter",
    "Pillay",
    "Mahlangu",
    "du Plessis",
    "Ndlovu",
]
ROLES = ["CFI", "Chief Flying Instructor", "Owner", "Manager", "Accountable Manager", "Admin", "Ops Manager"]
PLANES = ["C172", "C152", "PA28", "Sling 2", "Bonanza", "R44", "Tecnam P2002", "PA34 Seneca"]
CHURN = 0.03  # share of rows that change from one date to the next
EPOCH = dt.datetime(2025, 1, 1)  # fixed workbook metadata: same inputs, same bytes


def _rng(*parts) -> random.Random:
    return random.Random(hashlib.sha256("|".join(map(str, parts)).encode()).digest())


NAME_TRIES = 20  # draws of an unused name before names get one word longer


class NameSpace:
    """Organisation names without accidental reuse: two words and a kind ('Blue Sky Aviation'), one
    word more once a draw keeps hitting names already taken (big bundles).

    Drawn with replacement, two different organisations of a 2,000-organisation bundle would share an
    exact name ~230 times; where one of them carries no website or e-mail domain, no resolver can
    tell which organisation its rows belong to. That is chance, not one of the hard cases the
    generator means to have (below), so names are never reused.
    """

    def __init__(self):
        self.used: set[str] = set()
        self.words = 2

    def take(self, name: str) -> str:
        self.used.add(name)
        return name

    def fresh(self, r: random.Random) -> str:
        while True:
            for _ in range(NAME_TRIES):
                name = " ".join(r.choice(WORDS) for _ in range(self.words)) + f" {r.choice(KINDS)}"
                if name not in self.used:
                    return self.take(name)
            self.words += 1


def entity_name(r: random.Random, earlier: list[dict], names: NameSpace) -> str:
    """A new organisation's name; some are near-twins of an earlier one: the same words in another
    order, or one word one letter longer ('Eagle' / 'Eagles'). They are different organisations; a
    twin that would repeat a name already taken ('Sky Sky …' swapped) is drawn afresh instead."""
    twin = r.random()
    if earlier and twin < 0.04:
        first, second, kind = r.choice(earlier)["organization_name"].split(" ", 2)
        name = f"{second} {first} {kind}"
    elif earlier and twin < 0.06:
        first, rest = r.choice(earlier)["organization_name"].split(" ", 1)
        name = f"{first}s {rest}"
    else:
        return names.fresh(r)
    return names.fresh(r) if name in names.used else names.take(name)


def make_entities(count: int, seed: int) -> list[dict]:
    """The true organisations behind every bundle of one seed, with their clean values; no two
    share a name."""
    r = _rng("entities", seed)
    entities, names = [], NameSpace()
    for i in range(count):
        name = entity_name(r, entities, names)
        province = r.choice(list(PROVINCES))
        slug = re.sub(r"[^a-z0-9]+", "", name.lower())[:18] + str(i)
        area = f"0{r.choice([11, 12, 21, 31, 41, 51])}"
        first, last = r.choice(FIRST), r.choice(LAST)
        # most write from their website's domain; some from a sister domain or free mail
        mail_domain = r.choice([f"{slug}.co.za"] * 8 + [f"{slug}.com", "gmail.com"])
        entities.append(
            {
                "entity_id": f"E{i:05d}",
                "organization_name": name,
                "province": province,
                "area": r.choice(CITIES[province]),
                "website": f"https://www.{slug}.co.za",
                "email": f"{first.lower()}.{last.split()[-1].lower()}@{mail_domain}",
                "phone": f"+27{area[1:]}{r.randint(1000000, 9999999)}",
                "contact_name": f"{first} {last}",
                "contact_role": r.choice(ROLES),
                "legal_suffix": r.choice(["", "", " (Pty) Ltd", " Pty Ltd", " CC"]),
                "trading_name": r.choice(["", "", "", f"{r.choice(WORDS)} Flyers", f"{r.choice(WORDS)} Air"]),
            }
        )
    return entities


class Mess:
    """Messy renderings of clean values; `level` is the chance of each kind of mess."""

    def __init__(self, r: random.Random, level: float):
        self.r, self.level = r, level

    def hit(self, factor: float = 1.0) -> bool:
        return self.r.random() < self.level * factor

    def name(self, e: dict) -> str:
        name = e["organization_name"] + (e["legal_suffix"] if self.hit(2) else "")
        if e["trading_name"] and self.hit(1.5):
            name += f" t/a {e['trading_name']}" if self.r.random() < 0.5 else f" ({e['trading_name']})"
        if self.hit(0.4):
            name = "The " + name
        if self.hit(0.3):  # a space typed one letter late: 'Lowveld Condor' -> 'LowveldC ondor'
            i = name.find(" ")
            if 0 < i < len(name) - 2 and name[i + 1] != " ":
                name = name[:i] + name[i + 1] + " " + name[i + 2 :]
        if self.hit():
            name = name.upper() if self.r.random() < 0.5 else name.lower()
        if self.hit(0.5):
            name = name.replace(" ", "  ", 1) + " "
        if self.hit(0.4) and " " in name:
            name = name.replace(" ", " & ", 1) if "&" not in name else name.replace("&", "and")
        if self.hit(0.3) and len(name) > 6:  # a typo: two neighbouring letters swapped
            i = self.r.randrange(2, len(name) - 2)
            name = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        return name

    def email(self, e: dict) -> str:
        if self.hit(0.1):  # a stand-in typed where nothing was known
            return f"unknown+{self.r.randint(1, 20)}@example.com"
        email = e["email"]
        if self.hit():
            email = email.upper() if self.r.random() < 0.3 else email.capitalize()
        if self.hit(0.6):
            email = f" {email} "
        if self.hit(0.3):
            email = "mailto:" + email
        if self.hit(0.15):
            email = email.replace("@", " at ")  # invalid
        return email

    def phone(self, e: dict) -> str:
        digits = e["phone"][3:]  # national number without the leading 0
        forms = [
            f"0{digits[:2]} {digits[2:5]} {digits[5:]}",
            f"+27 (0){digits[:2]} {digits[2:5]} {digits[5:]}",
            f"27{digits}",
            f"0{digits[:2]}-{digits[2:5]}-{digits[5:]}",
            f"+27{digits}",
        ]
        phone = forms[0] if not self.hit(3) else self.r.choice(forms)
        return phone[:5] if self.hit(0.1) else phone  # too short: invalid

    def website(self, e: dict) -> str:
        host = e["website"].removeprefix("https://www.")
        return (
            self.r.choice([f"https://www.{host}", f"www.{host}", host, f"http://{host}/", f"WWW.{host.upper()}"])
            if self.hit(3)
            else e["website"]
        )

    def key(self, ref: int):
        """A Contact Database C_ID: often blank or 0, as an uncached lookup formula reads."""
        return ref if not self.hit(1.5) else self.r.choice(["", 0])

    def maybe(self, value: str, factor: float = 1.0) -> str:
        """The value, or nothing (a cell left empty)."""
        return "" if self.hit(factor) else value

    def province(self, e: dict) -> str:
        return self.r.choice(PROVINCES[e["province"]]) if self.hit(3) else e["province"]

    def header(self, column: str) -> str:
        return column.lower() if column and self.hit(0.3) else column


def _rows(sheet: str, entities: list[dict], count: int, seed: int, date: dt.date, level: float) -> list[tuple]:
    """(entity or None, row values) for one sheet; None marks a blank row.

    Each row draws from its own random stream, so every bundle shows the same rows except ~3% that
    change per date, and a cleaner version (lower level) corrects some cells of the same rows.
    """
    rows = []
    for i in range(count):
        r = _rng("row", seed, sheet, i)
        if _rng("churn", seed, date, sheet, i).random() < CHURN:
            r = _rng("row", seed, date, sheet, i)
        mess = Mess(r, level)
        if mess.hit(0.15) and 0 < i < count - 1:
            rows.append((None, None))  # blank row, as captures have
            continue
        e = r.choice(entities)
        rows.append((e, _values(sheet, e, i, r, mess)))
    return rows


def _values(sheet: str, e: dict, i: int, r: random.Random, mess: Mess) -> list:
    first, last = e["contact_name"].split(" ", 1)
    when = EPOCH + dt.timedelta(days=r.randrange(0, 300))
    name = mess.name(e)
    ref = int(e["entity_id"][1:]) + 1
    if sheet == "Organisation":
        return [
            name,
            ref,
            when,
            r.choice(["Y", "N", ""]),
            mess.province(e),  # Hotpass's Area holds province names
            f"{r.randint(2, 80)} km",
            r.choice(KINDS[:4]),
            mess.website(e),
            f"{r.randint(1, 200)} Airport Rd, {e['area']}",
            ", ".join(r.sample(PLANES, 2)),
            r.choice(["Flight School", "Club", "Charter"]),
            "",
            "",
        ]
    if sheet == "Contact Info":
        return [
            ref,
            name,
            when,
            first,
            last,
            e["contact_role"],
            mess.phone(e),
            mess.phone(e) if mess.hit() else "",
            mess.email(e),
            "Y" if mess.hit(0.2) else "",
            "see notes" if mess.hit(0.2) else None,
        ]
    if sheet == "Company_Cat":
        return [
            ref,
            name,
            name.upper()[:20],
            when,
            r.choice(["Flight School", "Maintenance", "Charter"]),
            r.choice(["A", "B", "C"]),
            r.randint(1, 5),
            r.choice(["Active", "Dormant"]),
            EPOCH,
            r.choice(["Yes", "No"]),
            mess.website(e),
        ]
    if sheet == "Company_Contacts":
        return [
            mess.key(ref),
            name,
            r.choice(["Active", "Left"]),
            first,
            last,
            e["contact_role"],
            mess.phone(e),
            mess.email(e),
            mess.phone(e),
        ]
    if sheet == "Company_Addresses":
        kind, airport = r.choice(["Physical", "Postal"]), r.choice(AIRPORTS)
        return [mess.key(ref), name, kind, airport, "Hangar 3" if r.random() < 0.3 else None]
    if sheet == "10-10-25 Capture":
        return [
            i,
            name,
            f"{e['contact_name']} ({e['contact_role']})",
            mess.phone(e),
            mess.email(e),
            f"{e['area']}, {e['province']}",
            ", ".join(r.sample(PLANES, 2)),
            mess.website(e),
            "Training",
            r.choice(KINDS[:4]),
        ]
    return [
        name,
        mess.province(e),
        r.choice(["Approved", "Renewal"]),
        mess.maybe(mess.website(e)),
        e["contact_name"],
        mess.phone(e),
        mess.email(e),
    ]


def _workbook_bytes(sheets: dict[str, tuple[list[str], list[tuple]]]) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "default_date_format": "yyyy-mm-dd",
        },
    )
    workbook.set_properties({"created": EPOCH, "author": "sheetfill sample"})
    for sheet, (header, rows) in sheets.items():
        worksheet = workbook.add_worksheet(sheet)
        worksheet.write_row(0, 0, header)
        for n, (_, values) in enumerate(rows, start=1):
            if values is not None:
                worksheet.write_row(n, 0, values)
    workbook.close()
    return buffer.getvalue()


def generate_bundle(
    zip_path, date: dt.date, version: str, scale: float = 1.0, seed: int = 0, nested: bool | None = None
) -> dict:
    """Write one bundle zip; return its ground truth (never stored inside the zip)."""
    zip_path = Path(zip_path)
    entities = make_entities(max(8, round(900 * scale)), seed)
    level = 0.25 if version.endswith("1") else 0.15  # later versions carry corrections
    header_mess = Mess(_rng("headers", seed, version), level)
    nested = version.endswith("2") if nested is None else nested
    truth_rows, members = [], []
    for workbook, sheets in SHEETS.items():
        content = {}
        for sheet, (columns, default) in sheets.items():
            rows = _rows(sheet, entities, max(1, round(default * scale)), seed, date, level)
            content[sheet] = ([header_mess.header(c) for c in columns], rows)
            truth_rows += [[workbook, sheet, n + 1, e["entity_id"]] for n, (e, v) in enumerate(rows, 1) if e]
        members.append((f"inputs/{workbook}" if nested else workbook, _workbook_bytes(content)))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(
                zipfile.ZipInfo(name, (date.year, date.month, date.day, 0, 0, 0)),
                data,
                compress_type=zipfile.ZIP_DEFLATED,
            )
    used = {row[3] for row in truth_rows}
    clean = {
        e["entity_id"]: {k: v for k, v in e.items() if k not in ("entity_id", "legal_suffix", "trading_name")}
        for e in entities
        if e["entity_id"] in used
    }
    return {"bundle": f"{date.isoformat()}--{version}", "rows": truth_rows, "entities": clean}


def archive_path(root: Path, pattern: str, date: dt.date, version: str) -> Path:
    from sheetfill.runs.discovery import compile_pattern

    return Path(root) / compile_pattern(pattern).example(date, version)


def generate_archives(
    root,
    start: dt.date,
    days: int,
    versions=("v1", "v2"),
    pattern: str = "{date}/hotpass-inputs-{version}.zip",
    scale: float = 1.0,
    seed: int = 0,
) -> list[Path]:
    """days × versions bundles under root laid out by pattern; ground truth in root/ground_truth/."""
    root = Path(root)
    paths = []
    for offset in range(days):
        date = start + dt.timedelta(days=offset)
        for version in versions:
            path = archive_path(root, pattern, date, version)
            truth = generate_bundle(path, date, version, scale=scale, seed=seed)
            truth_file = root / "ground_truth" / f"{truth['bundle']}.json"
            truth_file.parent.mkdir(parents=True, exist_ok=True)
            truth_file.write_text(json.dumps(truth, sort_keys=True) + "\n")
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sheetfill sample", description="Generate Hotpass-shaped sample archives.")
    parser.add_argument("--out", required=True, type=Path, help="archive root to write into")
    parser.add_argument("--start", default="2025-09-29", type=dt.date.fromisoformat, help="first date, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--versions", nargs="+", default=["v1", "v2"])
    parser.add_argument("--pattern", default="{date}/hotpass-inputs-{version}.zip")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every sheet's row count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = generate_archives(args.out, args.start, args.days, args.versions, args.pattern, args.scale, args.seed)
    print(sample_report(paths, args))
    return 0


def sample_report(paths: list[Path], args) -> str:
    """Where the archives went and the exact command that backfills over them."""
    import shlex

    out = args.out.resolve()
    last = args.start + dt.timedelta(days=args.days - 1)
    command = ["sheetfill", "backfill", "--archive-root", str(out), "--start-date", str(args.start)]
    command += ["--end-date", str(last)]
    if args.pattern != "{date}/hotpass-inputs-{version}.zip":
        command += ["--archive-pattern", args.pattern]
    return (
        f"wrote {len(paths)} archives ({args.days} dates x {len(args.versions)} versions) under {out}\n"
        f"backfill over them with:\n  {shlex.join(command)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
