#!/usr/bin/env python3
"""Generates src/contact/table.rs and tests/fixtures/phone_numbers.tsv from
libphonenumber's metadata, as shipped by the `phonenumbers` package (its
Python port; the version is pinned below and written into both files).

    pip install phonenumbers==9.0.43 regex==2024.11.6
    python3 tools/phone_table.py

The table keeps, per country calling code, only what international numbers
need: the national (trunk) prefix people insert after the country code, the
possible lengths of a national significant number, whether a number may
itself begin with the prefix, and, for the 19 countries whose prefix rule is
a pattern rather than digits, that pattern spelled out as every way it can
match (finite, in the order a regular expression engine tries them), its
transform rule, and the country's national-number pattern as shapes, so the
core reads those numbers exactly as libphonenumber does without a regular
expression engine. The corpus is numbers as people type them, with the E.164
form libphonenumber gives (or `invalid`), and every way each pattern rule can
read a prefix, typed before example and random numbers.
"""
import os
import random
import re._constants as C
import re._parser as sre_parse
import unicodedata
import phonenumbers
import regex
from phonenumbers import PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, ValidationResult

VERSION = "9.0.43"
assert phonenumbers.__version__ == VERSION, phonenumbers.__version__
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def metadata(cc):
    region = COUNTRY_CODE_TO_REGION_CODE[cc][0]
    return region, PhoneMetadata.metadata_for_region_or_calling_code(cc, region)


def can_start(pattern, digits):
    """Whether some full match of `pattern` starts with `digits`."""
    return regex.fullmatch("(?:%s)" % pattern, digits, partial=True) is not None


DIGITS = frozenset("0123456789")


def charset(op, av):
    if op == C.LITERAL:
        return frozenset(chr(av))
    out = set()
    for o, a in av:
        if o == C.LITERAL:
            out.add(chr(a))
        elif o == C.RANGE:
            out |= {chr(c) for c in range(a[0], a[1] + 1)}
        elif o == C.CATEGORY and a == C.CATEGORY_DIGIT:
            out |= DIGITS
        else:
            raise ValueError((o, a))
    return frozenset(out)


def paths(parsed):
    """Every way a (finite) pattern can match, in the order a backtracking
    regular expression engine tries them: a list of token tuples, each token
    a set of digits, ("(", group), (")", group) or "$". The first path that
    fits a number is the match the engine finds."""
    out = [()]
    for op, av in parsed:
        if op in (C.LITERAL, C.IN):
            ways = [(charset(op, av),)]
        elif op == C.SUBPATTERN:
            group, inner = av[0], paths(av[-1])
            ways = [(("(", group),) + p + ((")", group),) if group else p for p in inner]
        elif op == C.BRANCH:
            ways = [p for branch in av[1] for p in paths(branch)]
        elif op == C.MAX_REPEAT:
            lo, hi, body = av
            inner, ways = paths(body), []
            for k in range(min(hi, 17), lo - 1, -1):  # greedy: the most first
                seqs = [()]
                for _ in range(k):
                    seqs = [s + p for s in seqs for p in inner]
                ways += seqs
        elif op == C.AT and av == C.AT_END:
            ways = [("$",)]
        else:
            raise ValueError((op, av))
        out = [p + w for p in out for w in ways]
    return out


def spell(token):
    """A token in the table's notation: a digit, `d` for any digit, `[..]`
    for a set, `{g` and `}` around group g, `$` for the number's end."""
    if token == "$":
        return "$"
    if isinstance(token, tuple):
        return "{%d" % token[1] if token[0] == "(" else "}"
    if len(token) == 1:
        return next(iter(token))
    return "d" if token == DIGITS else "[%s]" % "".join(sorted(token))


def shapes(pattern):
    """A national-number pattern as shapes `HEAD:mn` (the digits HEAD
    spells, then m to n digits of any kind, m and n in hex), in one string."""
    tails, order = {}, []
    for p in paths(sre_parse.parse(pattern)):
        head = [t for t in p if isinstance(t, frozenset)]
        n = 0
        while head and head[-1] == DIGITS:
            head.pop()
            n += 1
        key = "".join(spell(t) for t in head)
        if key not in tails:
            tails[key] = set()
            order.append(key)
        tails[key].add(n)
    out = []
    for key in order:
        ns = sorted(tails[key])
        run = [ns[0]]
        for n in ns[1:] + [None]:
            if n is not None and n == run[-1] + 1:
                run.append(n)
                continue
            assert run[-1] < 16, pattern
            out.append("%s:%x%x" % (key, run[0], run[-1]))
            run = [n]
    return ",".join(out)


def pattern_rule(md):
    """A prefix rule that is a pattern, spelled out for the core: its
    paths in the engine's order, its group count, its transform rule, and
    the country's national numbers as shapes."""
    parsed = sre_parse.parse(md.national_prefix_for_parsing)
    ways = paths(parsed)
    for p in ways:  # the core reads groups one at a time, numbered by a digit
        opened = [t for t in p if isinstance(t, tuple)]
        assert all(a[0] == "(" and b[0] == ")" for a, b in zip(opened[::2], opened[1::2])), p
    assert parsed.state.groups - 1 <= 3
    # Each way after the first shares its start with the one before: it is
    # written as that shared length (a character, `0` + n) and the rest.
    spelled, previous = [], ""
    for way in ("".join(spell(t) for t in p) for p in ways):
        shared = 0
        while shared < min(len(way), len(previous)) and way[shared] == previous[shared]:
            shared += 1
        assert len(way) <= 40 and shared < 44
        spelled.append(chr(0x30 + shared) + way[shared:])
        previous = way
    ways = ",".join(spelled)
    transform = (md.national_prefix_transform_rule or "").replace("\\", "\\\\")
    national = shapes(md.general_desc.national_number_pattern)
    return ways, parsed.state.groups - 1, transform, national


rows = []
for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
    region, md = metadata(cc)
    lengths = 0
    for n in md.general_desc.possible_length or ():
        if n > 0:
            lengths |= 1 << n
    parsing = md.national_prefix_for_parsing or ""
    prefix = md.national_prefix or ""
    if parsing.isdigit():
        prefix = parsing
    pattern = pattern_rule(md) if parsing and not parsing.isdigit() else None
    nsn = md.general_desc.national_number_pattern or ""
    # Two-digit starts of a national number that begin with the prefix and
    # can begin a real number: there, the prefix may be part of the number.
    viable = 0
    for n in range(100):
        two = "%02d" % n
        if pattern is None and prefix and (two.startswith(prefix) or prefix.startswith(two)) and can_start(nsn, two):
            viable |= 1 << n
    rows.append((cc, region, prefix, lengths, viable, pattern))

with open(os.path.join(ROOT, "src", "contact", "table.rs"), "w") as out:
    out.write("//! Generated by `tools/phone_table.py` from libphonenumber's metadata\n")
    out.write(f"//! (the `phonenumbers` package, version {VERSION}). Do not edit.\n\n")
    out.write("use super::shapes::{Country, Pattern, Rule};\n\n")
    out.write(f"/// Every country calling code, ascending ({len(rows)}): the code, its\n")
    out.write("/// national prefix, and its possible national lengths (bit n: n digits).\n")
    out.write("pub const COUNTRIES: &[Country] = &[\n")
    for cc, region, prefix, lengths, viable, pattern in rows:
        out.write(f"    Country {{ code: {cc}, prefix: \"{prefix}\", lengths: {lengths:#x} }}, // {region}\n")
    out.write("];\n\n")
    out.write("/// The countries whose national prefix can begin a number, by code,\n")
    out.write("/// ascending.\n")
    out.write("pub const RULES: &[Rule] = &[\n")
    for cc, region, prefix, lengths, viable, pattern in rows:
        if viable:
            out.write(f"    Rule {{ code: {cc}, viable: {viable:#x} }}, // {region}\n")
    out.write("];\n\n")
    out.write("/// The countries whose national-prefix rule is a pattern, spelled out,\n")
    out.write("/// by code, ascending.\n")
    out.write("pub const PATTERNS: &[Pattern] = &[\n")
    for cc, region, prefix, lengths, viable, pattern in rows:
        if pattern:
            ways, groups, transform, national = pattern
            out.write(f"    // {region}: {metadata(cc)[1].national_prefix_for_parsing}\n")
            out.write(f"    Pattern {{ code: {cc}, ways: \"{ways}\", groups: {groups}, transform: \"{transform}\", national: \"{national}\" }},\n")
    out.write("];\n\n")
    zeros = sorted({ord(c) - int(unicodedata.decimal(c)) for c in map(chr, range(0x110000)) if unicodedata.decimal(c, None) is not None and ord(c) > 0x7f})
    out.write(f"/// The zero of every run of Unicode decimal digits but ASCII (Unicode {unicodedata.unidata_version}).\n")
    out.write("pub const ZEROS: &[u32] = &[\n")
    for i in range(0, len(zeros), 8):
        out.write("    " + ", ".join(f"{z:#x}" for z in zeros[i:i + 8]) + ",\n")
    out.write("];\n")

# The corpus: each region's example mobile number (or fixed line), typed the
# ways people type it, and numbers that cannot exist.
def typed(number, region, md):
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    cc = str(number.country_code)
    nsn = e164[len(cc) + 1:]
    forms = [e164, intl, intl.replace(" ", "-"), intl.replace(" ", "."), "+%s (%s) %s" % (cc, nsn[:3], nsn[3:])]
    if md.national_prefix:
        np = md.national_prefix
        forms.append("+%s (%s) %s" % (cc, np, nsn))
        forms.append("+%s %s%s" % (cc, np, nsn))
        forms.append("+%s %s %s" % (cc, np, nsn))
    forms.append("+%s %s" % (cc, nsn[:-1]))         # too short
    forms.append("+%s %s" % (cc, nsn + "12"))        # too long
    return forms

lines = []
for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
    region, md = metadata(cc)
    if region == "001":
        continue
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        ex = phonenumbers.example_number_for_type(region, kind)
        if ex is not None:
            break
    if ex is None:
        continue
    lines.extend(typed(ex, region, md))
lines += ["+999 1234 5678", "+1 415 555 26711", "+1 415 555 267", "+44 (0)20 7946 0958",
          "+49 (0) 171 1234567", "+44 07911 123456", "+1 1 415 555 2671", "+39 (0)6 1234 5678",
          "+39 06 1234 5678", "+7 8 912 345 67 89", "+7 800 123 45 67", "+36 06 30 123 4567",
          "+683 7012", "+290 8 1234", "+690 3010", "+54 9 11 1234 5678", "+54 11 15 1234 5678",
          "+49 171/1234567", "+1 415–555–2671", "+375 80 29 123 45 67"]
lines += ["+55 011 98765 4321", "+55 (011) 98765-4321"]

def pattern_numbers(cc, md):
    """For a country whose prefix rule is a pattern: each way the rule can
    read, typed before the country's example numbers and before random
    digits, and random national numbers (seeded by the code, so the corpus
    is the same on every run)."""
    rng = random.Random(cc)
    region = COUNTRY_CODE_TO_REGION_CODE[cc][0]
    examples = []
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                 phonenumbers.PhoneNumberType.TOLL_FREE):
        ex = phonenumbers.example_number_for_type(region, kind)
        if ex is not None:
            examples.append(phonenumbers.format_number(ex, PhoneNumberFormat.E164)[len(str(cc)) + 1:])
    lengths = [n for n in md.general_desc.possible_length if n > 0]
    random_digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))
    out = []
    for p in paths(sre_parse.parse(md.national_prefix_for_parsing)):
        read = "".join(rng.choice(sorted(t)) for t in p if isinstance(t, frozenset))
        if "$" in p:
            out.append("+%s %s" % (cc, read))
            continue
        for nsn in examples:
            out.append("+%s %s %s" % (cc, read, nsn))
        for n in rng.sample(lengths, min(2, len(lengths))):
            out.append("+%s %s %s" % (cc, read, random_digits(max(n - len(read), 1))))
    for _ in range(40):
        out.append("+%s %s" % (cc, random_digits(rng.randint(min(lengths) - 1, max(lengths) + 1))))
    return out


for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
    region, md = metadata(cc)
    parsing = md.national_prefix_for_parsing or ""
    if parsing and not parsing.isdigit() and region != "001":
        lines.extend(pattern_numbers(cc, md))



def expected(raw):
    try:
        n = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return "invalid"
    if phonenumbers.is_possible_number_with_reason(n) != ValidationResult.IS_POSSIBLE:
        return "invalid"
    return phonenumbers.format_number(n, PhoneNumberFormat.E164)


seen = set()
with open(os.path.join(ROOT, "tests", "fixtures", "phone_numbers.tsv"), "w") as out:
    out.write(f"# input\tE.164 by libphonenumber (phonenumbers {VERSION}), or invalid. Generated by tools/phone_table.py.\n")
    for raw in lines:
        if raw in seen:
            continue
        seen.add(raw)
        out.write(f"{raw}\t{expected(raw)}\n")
print(len(rows), "codes;", len(seen), "corpus lines")
