"""Every string the scanner app shows, in English and Spanish.

>>> texts("es")("verdict.deny")
'DENEGADO'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from scanner_app.ui.texts_en import EN as _EN
from scanner_app.ui.texts_es import ES as _ES

__all__ = ["CATALOGS", "Lang", "Texts", "texts"]


class Lang(StrEnum):
    EN = "en"
    ES = "es"


CATALOGS: Mapping[Lang, Mapping[str, str]] = MappingProxyType(
    {Lang.EN: MappingProxyType(_EN), Lang.ES: MappingProxyType(_ES)}
)


@dataclass(frozen=True, slots=True)
class Texts:
    """One language's strings: `t("status.pending", n=3)` -> "3 to upload"."""

    lang: Lang

    def __call__(self, key: str, **values: object) -> str:
        template = CATALOGS[self.lang][key]
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in CATALOGS[self.lang]


def texts(lang: str | Lang) -> Texts:
    """The strings of `lang` ("en" or "es"); anything else falls back to English."""
    try:
        return Texts(Lang(lang))
    except ValueError:
        return Texts(Lang.EN)
