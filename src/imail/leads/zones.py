"""Each country's main time zone (ISO 3166-1 alpha-2 → IANA name), for leads that give a country and no zone.

Generated from the IANA tz database's zone.tab; countries spanning several zones use their most populous
one (US → America/New_York, RU → Europe/Moscow, AU → Australia/Sydney, BR → America/Sao_Paulo…)."""

COUNTRY_ZONES: dict[str, str] = {
    "AD": "Europe/Andorra",  # Andorra
    "AE": "Asia/Dubai",  # United Arab Emirates
    "AF": "Asia/Kabul",  # Afghanistan
    "AG": "America/Antigua",  # Antigua & Barbuda
    "AI": "America/Anguilla",  # Anguilla
    "AL": "Europe/Tirane",  # Albania
    "AM": "Asia/Yerevan",  # Armenia
    "AO": "Africa/Luanda",  # Angola
    "AQ": "Antarctica/McMurdo",  # Antarctica
    "AR": "America/Argentina/Buenos_Aires",  # Argentina
    "AS": "Pacific/Pago_Pago",  # Samoa (American)
    "AT": "Europe/Vienna",  # Austria
    "AU": "Australia/Sydney",  # Australia
    "AW": "America/Aruba",  # Aruba
    "AX": "Europe/Mariehamn",  # Åland Islands
    "AZ": "Asia/Baku",  # Azerbaijan
    "BA": "Europe/Sarajevo",  # Bosnia & Herzegovina
    "BB": "America/Barbados",  # Barbados
    "BD": "Asia/Dhaka",  # Bangladesh
    "BE": "Europe/Brussels",  # Belgium
    "BF": "Africa/Ouagadougou",  # Burkina Faso
    "BG": "Europe/Sofia",  # Bulgaria
    "BH": "Asia/Bahrain",  # Bahrain
    "BI": "Africa/Bujumbura",  # Burundi
    "BJ": "Africa/Porto-Novo",  # Benin
    "BL": "America/St_Barthelemy",  # St Barthelemy
    "BM": "Atlantic/Bermuda",  # Bermuda
    "BN": "Asia/Brunei",  # Brunei
    "BO": "America/La_Paz",  # Bolivia
    "BQ": "America/Kralendijk",  # Caribbean NL
    "BR": "America/Sao_Paulo",  # Brazil
    "BS": "America/Nassau",  # Bahamas
    "BT": "Asia/Thimphu",  # Bhutan
    "BW": "Africa/Gaborone",  # Botswana
    "BY": "Europe/Minsk",  # Belarus
    "BZ": "America/Belize",  # Belize
    "CA": "America/Toronto",  # Canada
    "CC": "Indian/Cocos",  # Cocos (Keeling) Islands
    "CD": "Africa/Kinshasa",  # Congo (Dem. Rep.)
    "CF": "Africa/Bangui",  # Central African Rep.
    "CG": "Africa/Brazzaville",  # Congo (Rep.)
    "CH": "Europe/Zurich",  # Switzerland
    "CI": "Africa/Abidjan",  # Côte d'Ivoire
    "CK": "Pacific/Rarotonga",  # Cook Islands
    "CL": "America/Santiago",  # Chile
    "CM": "Africa/Douala",  # Cameroon
    "CN": "Asia/Shanghai",  # China
    "CO": "America/Bogota",  # Colombia
    "CR": "America/Costa_Rica",  # Costa Rica
    "CU": "America/Havana",  # Cuba
    "CV": "Atlantic/Cape_Verde",  # Cape Verde
    "CW": "America/Curacao",  # Curaçao
    "CX": "Indian/Christmas",  # Christmas Island
    "CY": "Asia/Nicosia",  # Cyprus
    "CZ": "Europe/Prague",  # Czech Republic
    "DE": "Europe/Berlin",  # Germany
    "DJ": "Africa/Djibouti",  # Djibouti
    "DK": "Europe/Copenhagen",  # Denmark
    "DM": "America/Dominica",  # Dominica
    "DO": "America/Santo_Domingo",  # Dominican Republic
    "DZ": "Africa/Algiers",  # Algeria
    "EC": "America/Guayaquil",  # Ecuador
    "EE": "Europe/Tallinn",  # Estonia
    "EG": "Africa/Cairo",  # Egypt
    "EH": "Africa/El_Aaiun",  # Western Sahara
    "ER": "Africa/Asmara",  # Eritrea
    "ES": "Europe/Madrid",  # Spain
    "ET": "Africa/Addis_Ababa",  # Ethiopia
    "FI": "Europe/Helsinki",  # Finland
    "FJ": "Pacific/Fiji",  # Fiji
    "FK": "Atlantic/Stanley",  # Falkland Islands
    "FM": "Pacific/Pohnpei",  # Micronesia
    "FO": "Atlantic/Faroe",  # Faroe Islands
    "FR": "Europe/Paris",  # France
    "GA": "Africa/Libreville",  # Gabon
    "GB": "Europe/London",  # Britain (UK)
    "GD": "America/Grenada",  # Grenada
    "GE": "Asia/Tbilisi",  # Georgia
    "GF": "America/Cayenne",  # French Guiana
    "GG": "Europe/Guernsey",  # Guernsey
    "GH": "Africa/Accra",  # Ghana
    "GI": "Europe/Gibraltar",  # Gibraltar
    "GL": "America/Nuuk",  # Greenland
    "GM": "Africa/Banjul",  # Gambia
    "GN": "Africa/Conakry",  # Guinea
    "GP": "America/Guadeloupe",  # Guadeloupe
    "GQ": "Africa/Malabo",  # Equatorial Guinea
    "GR": "Europe/Athens",  # Greece
    "GS": "Atlantic/South_Georgia",  # South Georgia & the South Sandwich Islands
    "GT": "America/Guatemala",  # Guatemala
    "GU": "Pacific/Guam",  # Guam
    "GW": "Africa/Bissau",  # Guinea-Bissau
    "GY": "America/Guyana",  # Guyana
    "HK": "Asia/Hong_Kong",  # Hong Kong
    "HN": "America/Tegucigalpa",  # Honduras
    "HR": "Europe/Zagreb",  # Croatia
    "HT": "America/Port-au-Prince",  # Haiti
    "HU": "Europe/Budapest",  # Hungary
    "ID": "Asia/Jakarta",  # Indonesia
    "IE": "Europe/Dublin",  # Ireland
    "IL": "Asia/Jerusalem",  # Israel
    "IM": "Europe/Isle_of_Man",  # Isle of Man
    "IN": "Asia/Kolkata",  # India
    "IO": "Indian/Chagos",  # British Indian Ocean Territory
    "IQ": "Asia/Baghdad",  # Iraq
    "IR": "Asia/Tehran",  # Iran
    "IS": "Atlantic/Reykjavik",  # Iceland
    "IT": "Europe/Rome",  # Italy
    "JE": "Europe/Jersey",  # Jersey
    "JM": "America/Jamaica",  # Jamaica
    "JO": "Asia/Amman",  # Jordan
    "JP": "Asia/Tokyo",  # Japan
    "KE": "Africa/Nairobi",  # Kenya
    "KG": "Asia/Bishkek",  # Kyrgyzstan
    "KH": "Asia/Phnom_Penh",  # Cambodia
    "KI": "Pacific/Tarawa",  # Kiribati
    "KM": "Indian/Comoro",  # Comoros
    "KN": "America/St_Kitts",  # St Kitts & Nevis
    "KP": "Asia/Pyongyang",  # Korea (North)
    "KR": "Asia/Seoul",  # Korea (South)
    "KW": "Asia/Kuwait",  # Kuwait
    "KY": "America/Cayman",  # Cayman Islands
    "KZ": "Asia/Almaty",  # Kazakhstan
    "LA": "Asia/Vientiane",  # Laos
    "LB": "Asia/Beirut",  # Lebanon
    "LC": "America/St_Lucia",  # St Lucia
    "LI": "Europe/Vaduz",  # Liechtenstein
    "LK": "Asia/Colombo",  # Sri Lanka
    "LR": "Africa/Monrovia",  # Liberia
    "LS": "Africa/Maseru",  # Lesotho
    "LT": "Europe/Vilnius",  # Lithuania
    "LU": "Europe/Luxembourg",  # Luxembourg
    "LV": "Europe/Riga",  # Latvia
    "LY": "Africa/Tripoli",  # Libya
    "MA": "Africa/Casablanca",  # Morocco
    "MC": "Europe/Monaco",  # Monaco
    "MD": "Europe/Chisinau",  # Moldova
    "ME": "Europe/Podgorica",  # Montenegro
    "MF": "America/Marigot",  # St Martin (French)
    "MG": "Indian/Antananarivo",  # Madagascar
    "MH": "Pacific/Majuro",  # Marshall Islands
    "MK": "Europe/Skopje",  # North Macedonia
    "ML": "Africa/Bamako",  # Mali
    "MM": "Asia/Yangon",  # Myanmar (Burma)
    "MN": "Asia/Ulaanbaatar",  # Mongolia
    "MO": "Asia/Macau",  # Macau
    "MP": "Pacific/Saipan",  # Northern Mariana Islands
    "MQ": "America/Martinique",  # Martinique
    "MR": "Africa/Nouakchott",  # Mauritania
    "MS": "America/Montserrat",  # Montserrat
    "MT": "Europe/Malta",  # Malta
    "MU": "Indian/Mauritius",  # Mauritius
    "MV": "Indian/Maldives",  # Maldives
    "MW": "Africa/Blantyre",  # Malawi
    "MX": "America/Mexico_City",  # Mexico
    "MY": "Asia/Kuala_Lumpur",  # Malaysia
    "MZ": "Africa/Maputo",  # Mozambique
    "NA": "Africa/Windhoek",  # Namibia
    "NC": "Pacific/Noumea",  # New Caledonia
    "NE": "Africa/Niamey",  # Niger
    "NF": "Pacific/Norfolk",  # Norfolk Island
    "NG": "Africa/Lagos",  # Nigeria
    "NI": "America/Managua",  # Nicaragua
    "NL": "Europe/Amsterdam",  # Netherlands
    "NO": "Europe/Oslo",  # Norway
    "NP": "Asia/Kathmandu",  # Nepal
    "NR": "Pacific/Nauru",  # Nauru
    "NU": "Pacific/Niue",  # Niue
    "NZ": "Pacific/Auckland",  # New Zealand
    "OM": "Asia/Muscat",  # Oman
    "PA": "America/Panama",  # Panama
    "PE": "America/Lima",  # Peru
    "PF": "Pacific/Tahiti",  # French Polynesia
    "PG": "Pacific/Port_Moresby",  # Papua New Guinea
    "PH": "Asia/Manila",  # Philippines
    "PK": "Asia/Karachi",  # Pakistan
    "PL": "Europe/Warsaw",  # Poland
    "PM": "America/Miquelon",  # St Pierre & Miquelon
    "PN": "Pacific/Pitcairn",  # Pitcairn
    "PR": "America/Puerto_Rico",  # Puerto Rico
    "PS": "Asia/Gaza",  # Palestine
    "PT": "Europe/Lisbon",  # Portugal
    "PW": "Pacific/Palau",  # Palau
    "PY": "America/Asuncion",  # Paraguay
    "QA": "Asia/Qatar",  # Qatar
    "RE": "Indian/Reunion",  # Réunion
    "RO": "Europe/Bucharest",  # Romania
    "RS": "Europe/Belgrade",  # Serbia
    "RU": "Europe/Moscow",  # Russia
    "RW": "Africa/Kigali",  # Rwanda
    "SA": "Asia/Riyadh",  # Saudi Arabia
    "SB": "Pacific/Guadalcanal",  # Solomon Islands
    "SC": "Indian/Mahe",  # Seychelles
    "SD": "Africa/Khartoum",  # Sudan
    "SE": "Europe/Stockholm",  # Sweden
    "SG": "Asia/Singapore",  # Singapore
    "SH": "Atlantic/St_Helena",  # St Helena
    "SI": "Europe/Ljubljana",  # Slovenia
    "SJ": "Arctic/Longyearbyen",  # Svalbard & Jan Mayen
    "SK": "Europe/Bratislava",  # Slovakia
    "SL": "Africa/Freetown",  # Sierra Leone
    "SM": "Europe/San_Marino",  # San Marino
    "SN": "Africa/Dakar",  # Senegal
    "SO": "Africa/Mogadishu",  # Somalia
    "SR": "America/Paramaribo",  # Suriname
    "SS": "Africa/Juba",  # South Sudan
    "ST": "Africa/Sao_Tome",  # Sao Tome & Principe
    "SV": "America/El_Salvador",  # El Salvador
    "SX": "America/Lower_Princes",  # St Maarten (Dutch)
    "SY": "Asia/Damascus",  # Syria
    "SZ": "Africa/Mbabane",  # Eswatini (Swaziland)
    "TC": "America/Grand_Turk",  # Turks & Caicos Is
    "TD": "Africa/Ndjamena",  # Chad
    "TF": "Indian/Kerguelen",  # French S. Terr.
    "TG": "Africa/Lome",  # Togo
    "TH": "Asia/Bangkok",  # Thailand
    "TJ": "Asia/Dushanbe",  # Tajikistan
    "TK": "Pacific/Fakaofo",  # Tokelau
    "TL": "Asia/Dili",  # East Timor
    "TM": "Asia/Ashgabat",  # Turkmenistan
    "TN": "Africa/Tunis",  # Tunisia
    "TO": "Pacific/Tongatapu",  # Tonga
    "TR": "Europe/Istanbul",  # Turkey
    "TT": "America/Port_of_Spain",  # Trinidad & Tobago
    "TV": "Pacific/Funafuti",  # Tuvalu
    "TW": "Asia/Taipei",  # Taiwan
    "TZ": "Africa/Dar_es_Salaam",  # Tanzania
    "UA": "Europe/Kyiv",  # Ukraine
    "UG": "Africa/Kampala",  # Uganda
    "UM": "Pacific/Midway",  # US minor outlying islands
    "US": "America/New_York",  # United States
    "UY": "America/Montevideo",  # Uruguay
    "UZ": "Asia/Tashkent",  # Uzbekistan
    "VA": "Europe/Vatican",  # Vatican City
    "VC": "America/St_Vincent",  # St Vincent
    "VE": "America/Caracas",  # Venezuela
    "VG": "America/Tortola",  # Virgin Islands (UK)
    "VI": "America/St_Thomas",  # Virgin Islands (US)
    "VN": "Asia/Ho_Chi_Minh",  # Vietnam
    "VU": "Pacific/Efate",  # Vanuatu
    "WF": "Pacific/Wallis",  # Wallis & Futuna
    "WS": "Pacific/Apia",  # Samoa (western)
    "YE": "Asia/Aden",  # Yemen
    "YT": "Indian/Mayotte",  # Mayotte
    "ZA": "Africa/Johannesburg",  # South Africa
    "ZM": "Africa/Lusaka",  # Zambia
    "ZW": "Africa/Harare",  # Zimbabwe
}
