//! `calendar holidays` and `deadline` run as a user would: the built binary, from an empty
//! folder (so only the compiled-in calendars exist), compared with the official lists.

use serde_json::Value;

use crate::harness::Cmd;

/// Runs `args` in an empty folder, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    Cmd::new(dir.path()).ok(args)
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// (date, eve, observed) of every holiday listed for `cc` in `year`.
fn listed(cc: &str, year: &str) -> Vec<(String, bool, bool)> {
    let v = json(&[
        "calendar",
        "holidays",
        "--country",
        cc,
        "--year",
        year,
        "--json",
    ]);
    assert_eq!(v["year"].as_i64().unwrap().to_string(), year);
    v["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert!(h["name"].as_str().is_some_and(|n| !n.is_empty()));
            let eve = h["eve"].as_bool().unwrap();
            assert_eq!(eve, h["kind"] == "eve");
            assert_eq!(eve, h["group"] == "eves", "{h}");
            (
                h["date"].as_str().unwrap().to_owned(),
                eve,
                h["observed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Builds the expected list: `e` marks an eve, `o` a weekday a weekend holiday is observed on.
fn expect(days: &[&str]) -> Vec<(String, bool, bool)> {
    days.iter()
        .map(|d| {
            let (date, tag) = d.split_at(10);
            (date.to_owned(), tag == " e", tag == " o")
        })
        .collect()
}

// Sweden: Lag (1989:253) om allmänna helgdagar, plus the eves (Lag 1930:173).
#[test]
fn sweden_2026_and_2027() {
    let se2026 = [
        "2026-01-01",
        "2026-01-06",
        "2026-04-03",
        "2026-04-05",
        "2026-04-06",
        "2026-05-01",
        "2026-05-14",
        "2026-05-24",
        "2026-06-06",
        "2026-06-19 e",
        "2026-06-20",
        "2026-10-31",
        "2026-12-24 e",
        "2026-12-25",
        "2026-12-26",
        "2026-12-31 e",
    ];
    assert_eq!(listed("SE", "2026"), expect(&se2026));
    let se2027 = [
        "2027-01-01",
        "2027-01-06",
        "2027-03-26",
        "2027-03-28",
        "2027-03-29",
        "2027-05-01",
        "2027-05-06",
        "2027-05-16",
        "2027-06-06",
        "2027-06-25 e",
        "2027-06-26",
        "2027-11-06",
        "2027-12-24 e",
        "2027-12-25",
        "2027-12-26",
        "2027-12-31 e",
    ];
    assert_eq!(listed("SE", "2027"), expect(&se2027));
    let v = json(&[
        "calendar",
        "holidays",
        "--country",
        "se",
        "--year",
        "2026",
        "--json",
    ]);
    let midsummer_eve = &v["holidays"][9];
    assert_eq!(midsummer_eve["name"], "Midsummer Eve");
    assert_eq!(midsummer_eve["local_name"], "Midsommarafton");
    assert_eq!(v["time_zone"], "Europe/Stockholm");
}

// United States: OPM federal holidays 2026 and 2027 (the observed Fridays and Mondays), with
// the weekend dates themselves also listed.
#[test]
fn united_states_2026_and_2027() {
    let us2026 = [
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03 o",
        "2026-07-04",
        "2026-09-07",
        "2026-10-12",
        "2026-11-11",
        "2026-11-26",
        "2026-12-25",
    ];
    assert_eq!(listed("US", "2026"), expect(&us2026));
    let us2027 = [
        "2027-01-01",
        "2027-01-18",
        "2027-02-15",
        "2027-05-31",
        "2027-06-18 o",
        "2027-06-19",
        "2027-07-04",
        "2027-07-05 o",
        "2027-09-06",
        "2027-10-11",
        "2027-11-11",
        "2027-11-25",
        "2027-12-24 o",
        "2027-12-25",
        "2027-12-31 o",
    ];
    assert_eq!(listed("US", "2027"), expect(&us2027));
}

// England and Wales: gov.uk/bank-holidays, substitute days flagged as observed.
#[test]
fn united_kingdom_2026_and_2027() {
    let gb2026 = [
        "2026-01-01",
        "2026-04-03",
        "2026-04-06",
        "2026-05-04",
        "2026-05-25",
        "2026-08-31",
        "2026-12-25",
        "2026-12-26",
        "2026-12-28 o",
    ];
    assert_eq!(listed("GB", "2026"), expect(&gb2026));
    let gb2027 = [
        "2027-01-01",
        "2027-03-26",
        "2027-03-29",
        "2027-05-03",
        "2027-05-31",
        "2027-08-30",
        "2027-12-25",
        "2027-12-26",
        "2027-12-27 o",
        "2027-12-28 o",
    ];
    assert_eq!(listed("GB", "2027"), expect(&gb2027));
    let v = json(&[
        "calendar",
        "holidays",
        "--country",
        "GB",
        "--year",
        "2022",
        "--json",
    ]);
    let names: Vec<&str> = v["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"State Funeral of Queen Elizabeth II"),
        "{names:?}"
    );
    assert!(
        names.contains(&"Platinum Jubilee of Elizabeth II"),
        "{names:?}"
    );
}

// Germany: the national holidays (bundeseinheitliche Feiertage).
#[test]
fn germany_2026_and_2027() {
    let de2026 = [
        "2026-01-01",
        "2026-04-03",
        "2026-04-06",
        "2026-05-01",
        "2026-05-14",
        "2026-05-25",
        "2026-10-03",
        "2026-12-25",
        "2026-12-26",
    ];
    assert_eq!(listed("DE", "2026"), expect(&de2026));
    let de2027 = [
        "2027-01-01",
        "2027-03-26",
        "2027-03-29",
        "2027-05-01",
        "2027-05-06",
        "2027-05-17",
        "2027-10-03",
        "2027-12-25",
        "2027-12-26",
    ];
    assert_eq!(listed("DE", "2027"), expect(&de2027));
}

#[test]
fn deadline_skips_christmas_and_new_year() {
    let args = [
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-12-23T15:00:00+01:00",
        "--business-days",
        "5",
        "--json",
    ];
    let v = json(&args);
    assert_eq!(v["last_day"], "2027-01-05");
    assert_eq!(v["deadline"], "2027-01-05T23:00:00Z");
    assert_eq!(v["calendar"], "SE");
    assert_eq!(v["time_zone"], "Europe/Stockholm");
    assert_eq!(v["business_days"], 5);
    // With the eves switched off, Christmas Eve and New Year's Eve count.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cpor.toml");
    std::fs::write(&config, "[calendars]\ndisabled_groups = [\"SE/eves\"]\n").unwrap();
    let with_config = [&["--config", config.to_str().unwrap()][..], &args[..]].concat();
    let v: Value = serde_json::from_str(&Cmd::new(dir.path()).ok(&with_config)).unwrap();
    assert_eq!(v["last_day"], "2026-12-31");
}

#[test]
fn deadline_from_a_saturday_counts_from_the_next_business_day() {
    let v = json(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-03-07T10:00:00+01:00",
        "--business-days",
        "1",
        "--json",
    ]);
    assert_eq!(v["from_date"], "2026-03-07");
    assert_eq!(v["last_day"], "2026-03-09");
    let v = json(&[
        "deadline",
        "--country",
        "US",
        "--time-zone",
        "Europe/Stockholm",
        "--from",
        "2026-03-07T10:00:00Z",
        "--calendar-days",
        "7",
        "--json",
    ]);
    assert_eq!(v["last_day"], "2026-03-14");
    assert_eq!(v["deadline"], "2026-03-14T23:00:00Z");
    assert_eq!(v["calendar_days"], 7);
    let text = ok(&[
        "deadline",
        "--country",
        "SE",
        "--from",
        "2026-12-23T15:00:00+01:00",
        "--business-days",
        "5",
    ]);
    assert!(
        text.contains("last day:  2027-01-05") && text.contains("Christmas Eve"),
        "{text}"
    );
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "deadline",
                "--country",
                "XX",
                "--from",
                "2026-01-01T00:00:00Z",
                "--business-days",
                "1",
            ],
            "unknown country",
        ),
        (
            &[
                "deadline",
                "--country",
                "SE",
                "--time-zone",
                "Mars/Base",
                "--from",
                "2026-01-01T00:00:00Z",
                "--business-days",
                "1",
            ],
            "unknown time zone",
        ),
        (
            &[
                "deadline",
                "--country",
                "SE",
                "--from",
                "yesterday",
                "--business-days",
                "1",
            ],
            "RFC 3339",
        ),
        (
            &[
                "deadline",
                "--country",
                "SE",
                "--from",
                "2026-01-01T00:00:00Z",
            ],
            "--business-days",
        ),
        (
            &["calendar", "holidays", "--country", "XX", "--year", "2026"],
            "unknown country",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, reason) in cases {
        let err = Cmd::new(dir.path()).fails(args, 2);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

#[test]
fn bad_calendar_file_stops_start_up_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config/calendars")).unwrap();
    std::fs::write(
        dir.path().join("config/calendars/se.toml"),
        "id = \"SE\"\nname = \"Sweden\"\ntime_zone = \"Europe/Stockholm\"\ncountries = [\"SE\"]\nsource = \"x\"\n\n[[rule]]\nname = \"Bad\"\ndate = \"02-30\"\n",
    )
    .unwrap();
    let err = Cmd::new(dir.path()).fails(
        &["calendar", "holidays", "--country", "SE", "--year", "2026"],
        2,
    );
    assert!(err.contains("se.toml:7:"), "{err}");
}

#[test]
fn batch_answers_every_line_in_order() {
    let input = concat!(
        r#"{"country":"SE","from":"2026-12-23T15:00:00+01:00","business_days":5}"#,
        "\n",
        r#"{"country":"ZZ","from":"2026-12-23T15:00:00+01:00","business_days":5}"#,
        "\n",
        "not json\n",
        r#"{"country":"US","time_zone":"America/Havana","from":"2024-03-08T12:00:00Z","calendar_days":1}"#,
        "\n",
        r#"{"country":"GB","time_zone":null,"from":"2026-12-24T09:00:00Z","business_days":1}"#,
        "\n",
        r#"{"country":"DE","from":"2026-01-01T00:00:00Z"}"#,
        "\n",
        "\n",
        r#"{"country":"SE","from":"2026-03-07T10:00:00+01:00","business_days":1}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Cmd::new(dir.path()).run_with_stdin(&["deadline", "--batch"], input.as_bytes());
    assert!(out.status.success());
    let lines: Vec<Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0]["last_day"], "2027-01-05");
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("unknown country")
    );
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[2]["error"].as_str().unwrap().contains("JSON"));
    assert_eq!(lines[3]["deadline"], "2024-03-10T05:00:00Z");
    assert_eq!(lines[3]["time_zone"], "America/Havana");
    assert_eq!(lines[4]["last_day"], "2026-12-29");
    assert!(
        lines[5]["error"]
            .as_str()
            .unwrap()
            .contains("business_days")
    );
    assert!(lines[6]["error"].is_string());
    assert_eq!(lines[7]["last_day"], "2026-03-09");
}
