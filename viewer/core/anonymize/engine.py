"""De-identify one pydicom dataset: PS3.15 Annex E Basic Application Level Confidentiality
Profile, with the Retain Full Dates and Retain UIDs options on request.

An :class:`Anonymizer` is one run's *key*: a random secret salt plus the options. Everything
it replaces is derived from the salt and the original value, so within a run (and in any
later run given the same key, see :meth:`Anonymizer.save`) the same original UID always
becomes the same new UID (series stay together, references such as Referenced SOP Instance
UID and Frame of Reference UID stay consistent) and the same patient the same pseudonym.
New UIDs are ``2.25.<int>`` UUID-derived UIDs (PS3.5 B.2) built from HMAC-SHA256(salt, UID):
without the salt the original cannot be recovered or confirmed.

What :meth:`Anonymizer.anonymize_dataset` does, recursively into every sequence item:

* every attribute of Table E.1-1 gets its Basic Profile action (:mod:`.profile`):
  ``X`` removed, ``Z`` emptied, ``D`` a dummy of its VR (:data:`DUMMY_TEXT`, date
  :data:`DUMMY_DATE`, time ``000000.00``, 0), ``U`` mapped as above. Combined codes are
  resolved to the variant valid whatever the attribute's type in the IOD: ``X/Z`` -> ``Z``;
  ``X/D``, ``Z/D``, ``X/Z/D`` -> ``D`` (a Type 1 attribute stays present), except that a
  *sequence* under ``X/D`` or ``X/Z/D`` is removed (those are Type 3 sequences of codes that
  would otherwise keep identifying content); ``D`` on a sequence keeps it and cleans its
  items; ``X/Z/U*`` (Referenced/Source Image Sequence) is kept with its UIDs replaced.
* Text Value (0040,A160), the free text of structured content items, gets a dummy: the
  table keeps it, but its Content Sequence is ``D`` (dummy content);
* Patient's Name and Patient ID become the patient's pseudonym ``ANON-<10 hex>`` (the
  profile allows a dummy for ``Z``; both are Type 2 and stay present);
* private attributes are removed, and so are the retired curve groups ``(50xx,eeee)``, the
  whole overlay groups ``(60xx,eeee)`` (overlay data and comments are ``X``; the rest of the
  Overlay Plane module would be invalid without them) and group lengths;
* Patient Identity Removed = YES, De-identification Method (text) and the De-identification
  Method Code Sequence (DCM 113100, plus 113106 with ``keep_dates``, 113110 with
  ``keep_uids``), Longitudinal Temporal Information Modified = REMOVED or UNMODIFIED.

Options: ``keep_dates`` (Retain Longitudinal Temporal Information with Full Dates Option)
keeps every DA/DT/TM attribute of the table except the patient's birth date and time;
``keep_uids`` (Retain UIDs Option) keeps every ``U`` attribute. Pixel Data is never touched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import uuid
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from viewer.core.anonymize.profile import TABLE_EDITION, action_for

DUMMY_TEXT = "ANONYMIZED"
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000.00"
DUMMY_DATETIME = "19000101000000.00"
PSEUDONYM_PREFIX = "ANON-"
KEY_FORMAT = "radview-anonymization-key"

_DATE_VRS = ("DA", "DT", "TM")
_TEXT_VRS = {"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
_INT_VRS = {"US", "SS", "UL", "SL", "UV", "SV"}
_FLOAT_VRS = {"FL", "FD"}
_BIRTH = {0x00100030, 0x00100032}  # Patient's Birth Date/Time: not kept by keep_dates
_PATIENT_NAME, _PATIENT_ID, _TEXT_VALUE = 0x00100010, 0x00100020, 0x0040A160
#: (code value, meaning) of CID 7050 De-identification Methods
CODE_BASIC = ("113100", "Basic Application Confidentiality Profile")
CODE_FULL_DATES = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
CODE_UIDS = ("113110", "Retain UIDs Option")


@dataclass(frozen=True)
class AnonymizeOptions:
    keep_dates: bool = False
    keep_uids: bool = False


class Anonymizer:
    """One run's key (secret salt + options) and the profile engine.

    salt: secret bytes (16 random bytes when None). Keep a saved key with the *source*
    data, never with the anonymised copy: with it the pseudonyms can be re-derived.
    """

    def __init__(self, options: AnonymizeOptions | None = None, salt: bytes | None = None):
        self.options = options or AnonymizeOptions()
        self.salt = salt if salt is not None else secrets.token_bytes(16)
        if len(self.salt) < 8:
            raise ValueError("the anonymisation key's salt is too short (8 bytes at least)")
        self.uid_map: dict[str, str] = {}
        self.patients: dict[tuple[str, str], str] = {}

    # -- key -----------------------------------------------------------------------------
    def _digest(self, kind: str, value: str) -> bytes:
        return hmac.new(self.salt, f"{kind}\0{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The new UID for ``original`` (the same for the same key); '' stays ''."""
        original = str(original).strip().rstrip("\0")
        if not original or self.options.keep_uids:
            return original
        new = self.uid_map.get(original)
        if new is None:
            digest = self._digest("uid", original)[:16]
            new = f"2.25.{uuid.UUID(bytes=digest, version=4).int}"
            self.uid_map[original] = new
        return new

    def pseudonym(self, patient_id: str = "", patient_name: str = "") -> str:
        """``ANON-<10 hex>`` for one patient: keyed by Patient ID, else by Patient's Name."""
        key = (str(patient_id).strip(), "" if str(patient_id).strip() else str(patient_name))
        name = self.patients.get(key)
        if name is None:
            name = PSEUDONYM_PREFIX + self._digest("patient", "\0".join(key)).hex()[:10].upper()
            self.patients[key] = name
        return name

    def to_json(self) -> dict:
        return {
            "format": KEY_FORMAT,
            "salt": self.salt.hex(),
            "keep_dates": self.options.keep_dates,
            "keep_uids": self.options.keep_uids,
            "table": TABLE_EDITION,
        }

    @classmethod
    def from_json(cls, doc: dict) -> Anonymizer:
        if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
            raise ValueError("not a radview anonymisation key file")
        try:
            salt = bytes.fromhex(doc["salt"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("the anonymisation key file has no valid salt") from None
        options = AnonymizeOptions(bool(doc.get("keep_dates")), bool(doc.get("keep_uids")))
        return cls(options, salt)

    def save(self, path: str | os.PathLike) -> None:
        """Write the key as JSON (atomically, readable by the owner only)."""
        from viewer.core.export.atomic import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Anonymizer:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the anonymisation key {path}: {exc}") from None
        return cls.from_json(doc)

    # -- datasets ------------------------------------------------------------------------
    def anonymize_dataset(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place (see the module docstring) and return it.

        The file meta (if any) follows: Media Storage SOP Instance UID = the new SOP
        Instance UID, application entity titles and private meta information removed.
        """
        pid = str(ds.get("PatientID", "") or "")
        pname = str(ds.get("PatientName", "") or "")
        pseudonym = self.pseudonym(pid, pname)
        self._clean(ds, pseudonym)
        ds.PatientName = pseudonym + "^"  # family name = pseudonym; Type 2: always present
        ds.PatientID = pseudonym
        self._mark(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            for keyword in (
                "SourceApplicationEntityTitle",
                "SendingApplicationEntityTitle",
                "ReceivingApplicationEntityTitle",
                "PrivateInformationCreatorUID",
                "PrivateInformation",
            ):
                if keyword in meta:
                    delattr(meta, keyword)
            if "SOPInstanceUID" in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            if "SOPClassUID" in ds:
                meta.MediaStorageSOPClassUID = ds.SOPClassUID
        return ds

    def _action(self, tag: int, vr: str) -> str | None:
        if tag in (_PATIENT_NAME, _PATIENT_ID):
            return "P"  # pseudonym
        if tag == _TEXT_VALUE:
            return "D"  # free text of a content item: its Content Sequence is D (dummy)
        action = action_for(tag)
        if action is None:
            return None
        if self.options.keep_dates and vr in _DATE_VRS and tag not in _BIRTH:
            return "K"
        if self.options.keep_uids and action == "U":
            return "K"
        if action == "X/Z":
            return "Z"
        if action in ("X/D", "X/Z/D"):
            return "X" if vr == "SQ" else "D"
        if action == "Z/D":
            return "D"
        return action

    def _clean(self, ds: Dataset, pseudonym: str) -> None:
        for tag in list(ds.keys()):
            group, element = tag.group, tag.element
            if (
                tag.is_private
                or element == 0
                or (0x5000 <= group <= 0x50FF and group % 2 == 0)
                or (0x6000 <= group <= 0x60FF and group % 2 == 0)
            ):
                del ds[tag]
                continue
            try:
                elem = ds[tag]
            except Exception:  # noqa: BLE001 - an undecodable value: drop it if listed
                if action_for(tag) is not None:
                    del ds[tag]
                continue
            action = self._action(int(tag), elem.VR)
            if action is None or action == "K":
                if elem.VR == "SQ":  # unlisted sequences still hold listed attributes
                    for item in elem.value:
                        self._clean(item, pseudonym)
                continue
            if action == "X":
                del ds[tag]
            elif action == "P":
                elem.value = pseudonym + "^" if elem.VR == "PN" else pseudonym
            elif action == "Z":
                elem.value = Sequence() if elem.VR == "SQ" else None
            elif action == "U":
                if elem.VR != "UI":
                    del ds[tag]
                elif elem.VM > 1:
                    elem.value = [self.uid(v) for v in elem.value]
                else:
                    elem.value = self.uid(elem.value or "")
            else:  # D, and X/Z/U*: keep sequences and clean their items
                if elem.VR == "SQ":
                    for item in elem.value:
                        self._clean(item, pseudonym)
                else:
                    elem.value = self._dummy(elem)

    def _dummy(self, elem):
        vr = elem.VR
        if vr == "UI":
            return self.uid(elem.value or "") if elem.VM <= 1 else [self.uid(v) for v in elem.value]
        if vr == "DA":
            return DUMMY_DATE
        if vr == "TM":
            return DUMMY_TIME
        if vr == "DT":
            return DUMMY_DATETIME
        if vr in ("IS", "DS"):
            return "0"
        if vr in _INT_VRS:
            return 0
        if vr in _FLOAT_VRS:
            return 0.0
        if vr == "AS":
            return "000D"
        if vr == "PN":
            return DUMMY_TEXT + "^"  # family name only (dciodvfy flags a bare word)
        if vr in _TEXT_VRS:
            return DUMMY_TEXT
        if vr == "AT":
            return 0
        return b"\0" * 8  # OB, OW, OD, OF, OL, OV, UN

    def _mark(self, ds: Dataset) -> None:
        """PS3.3 C.12.1.1.7 / C.7.1.1: what was done, in the dataset itself."""
        codes = [CODE_BASIC]
        method = [f"PS3.15 E.1 Basic Profile {TABLE_EDITION} (radview)"]
        if self.options.keep_dates:
            codes.append(CODE_FULL_DATES)
            method.append("Retain Full Dates Option")
        if self.options.keep_uids:
            codes.append(CODE_UIDS)
            method.append("Retain UIDs Option")
        ds.PatientIdentityRemoved = "YES"
        previous = list(ds.get("DeidentificationMethod") or [])
        if isinstance(ds.get("DeidentificationMethod"), str):
            previous = [ds.DeidentificationMethod]
        ds.DeidentificationMethod = [m for m in previous if m not in method] + method
        items = list(ds.get("DeidentificationMethodCodeSequence") or [])
        present = {
            (str(i.get("CodingSchemeDesignator", "")), str(i.get("CodeValue", ""))) for i in items
        }
        for value, meaning in codes:
            if ("DCM", value) in present:
                continue
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = (
            "UNMODIFIED" if self.options.keep_dates else "REMOVED"
        )
