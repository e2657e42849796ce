"""French departments and their region (INSEE codes, 2016 regions), for generalising geography.

Every department of metropolitan France and overseas: the five overseas departments-regions
are their own region; the overseas collectivities (975, 977, 978, 986, 987, 988) are grouped
under "COM". An unknown department has no region (generalised straight to national).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l

REGIONS: Mapping[str, tuple[object, tuple[str, ...]]] = {
    "84": (
        _l("Auvergne-Rhône-Alpes"),
        ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"),
    ),
    "27": (_l("Bourgogne-Franche-Comté"), ("21", "25", "39", "58", "70", "71", "89", "90")),
    "53": (_l("Bretagne"), ("22", "29", "35", "56")),
    "24": (_l("Centre-Val de Loire"), ("18", "28", "36", "37", "41", "45")),
    "94": (_l("Corse"), ("2A", "2B")),
    "44": (_l("Grand Est"), ("08", "10", "51", "52", "54", "55", "57", "67", "68", "88")),
    "32": (_l("Hauts-de-France"), ("02", "59", "60", "62", "80")),
    "11": (_l("Île-de-France"), ("75", "77", "78", "91", "92", "93", "94", "95")),
    "28": (_l("Normandie"), ("14", "27", "50", "61", "76")),
    "75": (
        _l("Nouvelle-Aquitaine"),
        ("16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"),
    ),
    "76": (
        _l("Occitanie"),
        ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"),
    ),
    "52": (_l("Pays de la Loire"), ("44", "49", "53", "72", "85")),
    "93": (_l("Provence-Alpes-Côte d'Azur"), ("04", "05", "06", "13", "83", "84")),
    "01": (_l("Guadeloupe"), ("971",)),
    "02": (_l("Martinique"), ("972",)),
    "03": (_l("Guyane"), ("973",)),
    "04": (_l("La Réunion"), ("974",)),
    "06": (_l("Mayotte"), ("976",)),
    "COM": (_l("Collectivités d'outre-mer"), ("975", "977", "978", "986", "987", "988")),
}

DEPARTMENT_REGION: Mapping[str, str] = {
    department: region for region, (_, departments) in REGIONS.items() for department in departments
}


def region_of(department: str | None) -> str | None:
    """The region code of a department code ("44" -> "52"), None if unknown."""
    if not department:
        return None
    return DEPARTMENT_REGION.get(department.strip().upper())
