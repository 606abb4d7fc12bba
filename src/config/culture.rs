//! Lucca's cultures: Windows language ids (LCIDs), as in a user's `cultureId` (lucca-api.md
//! §1.5). Lucca documents no route that lists its cultures, so `lucca.defaults.culture_id` is
//! checked here, without the network: against the range of LCIDs Lucca accepts, and against
//! the common ones named below.

use std::ops::RangeInclusive;

/// The LCIDs Lucca accepts: 1025 (ar-SA) to 58380 (fr-MA).
pub(super) const LUCCA_CULTURES: RangeInclusive<i64> = 1025..=58380;

/// Common LCIDs and their names in their own language, in id order.
const COMMON: [(i64, &str, &str); 52] = [
    (1025, "ar-SA", "العربية (المملكة العربية السعودية)"),
    (1026, "bg-BG", "български (България)"),
    (1027, "ca-ES", "català (Espanya)"),
    (1028, "zh-TW", "中文（台灣）"),
    (1029, "cs-CZ", "čeština (Česko)"),
    (1030, "da-DK", "dansk (Danmark)"),
    (1031, "de-DE", "Deutsch (Deutschland)"),
    (1032, "el-GR", "Ελληνικά (Ελλάδα)"),
    (1033, "en-US", "English (United States)"),
    (
        1034,
        "es-ES_tradnl",
        "español (España, alfabetización tradicional)",
    ),
    (1035, "fi-FI", "suomi (Suomi)"),
    (1036, "fr-FR", "français (France)"),
    (1037, "he-IL", "עברית (ישראל)"),
    (1038, "hu-HU", "magyar (Magyarország)"),
    (1040, "it-IT", "italiano (Italia)"),
    (1041, "ja-JP", "日本語 (日本)"),
    (1042, "ko-KR", "한국어 (대한민국)"),
    (1043, "nl-NL", "Nederlands (Nederland)"),
    (1044, "nb-NO", "norsk bokmål (Norge)"),
    (1045, "pl-PL", "polski (Polska)"),
    (1046, "pt-BR", "português (Brasil)"),
    (1048, "ro-RO", "română (România)"),
    (1049, "ru-RU", "русский (Россия)"),
    (1050, "hr-HR", "hrvatski (Hrvatska)"),
    (1051, "sk-SK", "slovenčina (Slovensko)"),
    (1053, "sv-SE", "svenska (Sverige)"),
    (1054, "th-TH", "ไทย (ไทย)"),
    (1055, "tr-TR", "Türkçe (Türkiye)"),
    (1058, "uk-UA", "українська (Україна)"),
    (1060, "sl-SI", "slovenščina (Slovenija)"),
    (1061, "et-EE", "eesti (Eesti)"),
    (1062, "lv-LV", "latviešu (Latvija)"),
    (1063, "lt-LT", "lietuvių (Lietuva)"),
    (1066, "vi-VN", "Tiếng Việt (Việt Nam)"),
    (1081, "hi-IN", "हिन्दी (भारत)"),
    (2052, "zh-CN", "中文（中国）"),
    (2055, "de-CH", "Deutsch (Schweiz)"),
    (2057, "en-GB", "English (United Kingdom)"),
    (2058, "es-MX", "español (México)"),
    (2060, "fr-BE", "français (Belgique)"),
    (2064, "it-CH", "italiano (Svizzera)"),
    (2067, "nl-BE", "Nederlands (België)"),
    (2070, "pt-PT", "português (Portugal)"),
    (3079, "de-AT", "Deutsch (Österreich)"),
    (3081, "en-AU", "English (Australia)"),
    (3082, "es-ES", "español (España)"),
    (3084, "fr-CA", "français (Canada)"),
    (4100, "fr-CH", "français (Suisse)"),
    (4103, "de-LU", "Deutsch (Luxemburg)"),
    (4105, "en-CA", "English (Canada)"),
    (5132, "fr-LU", "français (Luxembourg)"),
    (6153, "en-IE", "English (Ireland)"),
];

/// The ids shown as examples when an id is refused or unusual.
const EXAMPLES: [i64; 6] = [1036, 1033, 2057, 1031, 3082, 1040];

/// `1036 fr-FR français (France)` for a common LCID.
pub(super) fn culture_name(id: i64) -> Option<String> {
    COMMON
        .binary_search_by_key(&id, |(lcid, _, _)| *lcid)
        .ok()
        .map(|i| {
            let (lcid, tag, name) = COMMON[i];
            format!("{lcid} {tag} {name}")
        })
}

/// "1036 fr-FR français (France), 1033 …": what to write instead.
pub(super) fn culture_examples() -> String {
    EXAMPLES
        .iter()
        .filter_map(|id| culture_name(*id))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_inside_luccas_range() {
        assert!(COMMON.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(COMMON.iter().all(|(id, _, _)| LUCCA_CULTURES.contains(id)));
        assert_eq!(
            culture_name(1036).as_deref(),
            Some("1036 fr-FR français (France)")
        );
        assert_eq!(
            culture_name(2057).as_deref(),
            Some("2057 en-GB English (United Kingdom)")
        );
        assert_eq!(culture_name(1039), None);
        assert_eq!(EXAMPLES.len(), culture_examples().matches(", ").count() + 1);
    }
}
