//! When a job runs: cron's five fields (minute, hour, day of month, month,
//! day of week), always in UTC — the syntax crontab(5) documents and that
//! Kubernetes CronJobs and GitHub Actions' `schedule` take. Numbers,
//! `*`, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`; day of week
//! 0–7 (0 and 7 are Sunday), or names: `JAN`–`DEC`, `SUN`–`SAT` (any case,
//! in ranges and lists too, as Kubernetes and GitHub Actions take them);
//! and the macros `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`,
//! `@yearly` (`@annually`). As in cron, when both day of month and day of
//! week are restricted (neither starts with `*`), a day matching either
//! runs. What the tool writes for a scheduler is the numeric form
//! ([`Schedule::cron`]): Debian's cron takes no ranges of names, GitHub
//! Actions no macros.

/// A parsed schedule and what it means for the evidence: the longest time
/// between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// As written (five fields, single spaces; a macro as is).
    pub text: String,
    /// The same in numbers, five fields: what every scheduler takes.
    pub cron: String,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
    /// The longest gap between two consecutive runs, in seconds.
    pub interval_secs: u64,
}

/// What a job on `schedule` (as written) should have done, for a control
/// whose evidence is too old: a missed run is named as one; "" without one.
pub fn missed(schedule: Option<&str>) -> String {
    schedule.map(|s| format!(": its job runs `{s}` (UTC) and missed a run, or failed")).unwrap_or_default()
}

/// Why a schedule cannot be read: which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

const FIELDS: [(&str, u32, u32); 5] =
    [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];

/// What else a field takes, for its error.
fn names_of(field: &str) -> &'static str {
    match field {
        "month" => " (or JAN-DEC)",
        "day of week" => " (or SUN-SAT)",
        _ => "",
    }
}

fn field(text: &str, (name, lo, hi): (&str, u32, u32)) -> Result<Vec<bool>, ScheduleError> {
    let mut set = vec![false; hi as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 =
                    s.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        ScheduleError(format!("the {name} field's step `{s}` is not a positive number"))
                    })?;
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (lo, hi),
            r => {
                let num = |v: &str| -> Result<u32, ScheduleError> {
                    v.parse::<u32>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| {
                        ScheduleError(format!("`{v}` is not in the {name} field's range {lo}-{hi}{}", names_of(name)))
                    })
                };
                match r.split_once('-') {
                    Some((a, b)) => (num(a)?, num(b)?),
                    None if step > 1 => (num(r)?, hi),
                    None => (num(r)?, num(r)?),
                }
            }
        };
        if from > to {
            return Err(ScheduleError(format!("the {name} range `{range}` runs backwards")));
        }
        for v in (from..=to).step_by(step as usize) {
            set[v as usize] = true;
        }
    }
    Ok(set)
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A macro as its five fields (crontab(5)); anything else as written.
fn macro_fields(text: &str) -> Result<String, ScheduleError> {
    let Some(name) = text.strip_prefix('@') else { return Ok(text.to_string()) };
    Ok(match name.to_ascii_lowercase().as_str() {
        "hourly" => "0 * * * *",
        "daily" | "midnight" => "0 0 * * *",
        "weekly" => "0 0 * * 0",
        "monthly" => "0 0 1 * *",
        "yearly" | "annually" => "0 0 1 1 *",
        "reboot" => {
            return Err(ScheduleError("`@reboot` runs at boot, not on a calendar: give the job a schedule".into()))
        }
        _ => {
            return Err(ScheduleError(format!(
                "`{text}` is not a macro cron knows (@hourly, @daily, @weekly, @monthly, @yearly)"
            )))
        }
    }
    .to_string())
}

/// `field` with each name of `names` (three letters, any case) as its
/// number, counted from `first`; other words are left for the field's
/// own error.
fn numbered(field: &str, names: &[&str], first: usize) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_ascii_lowercase();
        match names.iter().position(|n| *n == lower) {
            Some(i) => out.push_str(&(i + first).to_string()),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in field.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A schedule's fields as lists of values (None: every value, `*`).
pub struct Fields {
    pub minutes: Vec<u32>,
    pub hours: Vec<u32>,
    pub days: Option<Vec<u32>>,
    pub months: Option<Vec<u32>>,
    /// 0 = Sunday.
    pub weekdays: Option<Vec<u32>>,
    /// A day matching either day field runs (both restrict the day, as
    /// cron reads them); otherwise a day must match both.
    pub either: bool,
}

fn values(set: &[bool]) -> Vec<u32> {
    set.iter().enumerate().filter(|(_, on)| **on).map(|(i, _)| i as u32).collect()
}

impl Schedule {
    /// How old the evidence of a job on this schedule may be: the longest
    /// gap and a twelfth of it, at least 10 minutes — the margin the
    /// dead-man alert (SuoopsJobMissed) adds too.
    pub fn allowance_secs(&self) -> u64 {
        self.interval_secs + (self.interval_secs / 12).max(600)
    }

    /// The values each field runs at, for other schedulers' syntax.
    pub fn fields(&self) -> Fields {
        let either = self.days_restricted && self.weekdays_restricted;
        let days = self.days.iter().skip(1).any(|d| !d).then(|| values(&self.days));
        let weekdays = self.weekdays.iter().any(|d| !d).then(|| values(&self.weekdays));
        // Either day field, one of them every day: every day (`1-31` with
        // `1` runs daily in cron).
        let (days, weekdays) =
            if either && (days.is_none() || weekdays.is_none()) { (None, None) } else { (days, weekdays) };
        Fields {
            minutes: values(&self.minutes),
            hours: values(&self.hours),
            days,
            months: self.months.iter().skip(1).any(|m| !m).then(|| values(&self.months)),
            weekdays,
            either,
        }
    }

    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let written = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let expanded = macro_fields(&written)?;
        let mut parts: Vec<String> = expanded.split_whitespace().map(str::to_string).collect();
        if parts.len() == 5 {
            parts[3] = numbered(&parts[3], &MONTHS, 1);
            parts[4] = numbered(&parts[4], &WEEKDAYS, 0);
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if parts.len() != 5 {
            return Err(ScheduleError(format!(
                "a schedule is cron's five fields in UTC (minute hour day-of-month month day-of-week, e.g. `0 2 * * *`); `{text}` has {}",
                parts.len()
            )));
        }
        let mut weekdays = field(parts[4], FIELDS[4])?;
        // 7 is Sunday too.
        if weekdays[7] {
            weekdays[0] = true;
        }
        weekdays.truncate(7);
        let mut s = Schedule {
            text: written,
            cron: parts.join(" "),
            minutes: field(parts[0], FIELDS[0])?,
            hours: field(parts[1], FIELDS[1])?,
            days: field(parts[2], FIELDS[2])?,
            months: field(parts[3], FIELDS[3])?,
            weekdays,
            // Vixie cron and Kubernetes: a field starting with `*` (`*/2`
            // too) does not restrict the day.
            days_restricted: !parts[2].starts_with('*'),
            weekdays_restricted: !parts[4].starts_with('*'),
            interval_secs: 0,
        };
        s.interval_secs = s.longest_gap().ok_or_else(|| {
            ScheduleError(format!("`{}` never runs (no such day in any month of the next eight years)", s.text))
        })?;
        Ok(s)
    }

    fn runs_on(&self, day: &Day) -> bool {
        let (d, w) = (self.days[day.dom as usize], self.weekdays[day.dow as usize]);
        // Vixie cron: either day field when both restrict, else both (a
        // `*` field matches every day).
        let day_ok = if self.days_restricted && self.weekdays_restricted { d || w } else { d && w };
        self.months[day.month as usize] && day_ok
    }

    /// The longest gap between consecutive runs over eight years from
    /// 2024-01-01 (leap years and every weekday of every date included):
    /// None when it never runs.
    fn longest_gap(&self) -> Option<u64> {
        let times: Vec<u64> =
            (0..24 * 60).filter(|m| self.hours[m / 60] && self.minutes[m % 60]).map(|m| m as u64 * 60).collect();
        let (mut first, mut last, mut gap) = (None::<u64>, None::<u64>, 0u64);
        let mut day = Day { dom: 1, month: 1, year: 2024, dow: 1 };
        for n in 0..(8 * 366) {
            if self.runs_on(&day) {
                for t in &times {
                    let at = n * 86_400 + t;
                    if let Some(prev) = last {
                        gap = gap.max(at - prev);
                    }
                    first.get_or_insert(at);
                    last = Some(at);
                }
            }
            day.next();
        }
        let (first, last) = (first?, last?);
        // One run a year or less: the gap around the horizon counts too.
        Some(if gap == 0 { 8 * 366 * 86_400 - last + first } else { gap })
    }
}

/// A calendar day (UTC), walked one at a time.
struct Day {
    dom: u32,
    month: u32,
    year: u32,
    /// 0 = Sunday.
    dow: u32,
}

impl Day {
    fn next(&mut self) {
        let y = self.year;
        let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let len = match self.month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        self.dow = (self.dow + 1) % 7;
        self.dom += 1;
        if self.dom > len {
            self.dom = 1;
            self.month += 1;
            if self.month > 12 {
                self.month = 1;
                self.year += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strategy_s_schedules_and_their_longest_gaps() {
        assert_eq!(Schedule::parse("0 2 * * *").expect("daily").interval_secs, 86_400);
        assert_eq!(Schedule::parse("0 */6 * * *").expect("6h").interval_secs, 6 * 3600);
        assert_eq!(Schedule::parse("*/15 * * * *").expect("15m").interval_secs, 900);
        // Weekdays only: Friday 02:00 to Monday 02:00.
        assert_eq!(Schedule::parse("0 2 * * 1-5").expect("weekdays").interval_secs, 3 * 86_400);
        // The first of the month: January 1 to February 1 is 31 days.
        assert_eq!(Schedule::parse("0 3 1 * *").expect("monthly").interval_secs, 31 * 86_400);
        // Sunday as 7, and a list.
        assert_eq!(Schedule::parse("30 1 * * 7").expect("sunday").interval_secs, 7 * 86_400);
        assert_eq!(Schedule::parse("0 6,18 * * *").expect("twice").interval_secs, 12 * 3600);
        assert_eq!(Schedule::parse("0  2 * *  *").expect("spaces").text, "0 2 * * *");
    }

    #[test]
    fn what_cron_would_refuse_is_said() {
        let e = |s: &str| Schedule::parse(s).expect_err(s).0;
        assert!(e("0 2 * *").contains("five fields"), "{}", e("0 2 * *"));
        assert_eq!(e("0 24 * * *"), "`24` is not in the hour field's range 0-23");
        assert_eq!(e("61 2 * * *"), "`61` is not in the minute field's range 0-59");
        assert_eq!(e("*/0 * * * *"), "the minute field's step `0` is not a positive number");
        assert_eq!(e("0 5-2 * * *"), "the hour range `5-2` runs backwards");
        assert_eq!(e("0 2 31 2 *"), "`0 2 31 2 *` never runs (no such day in any month of the next eight years)");
        assert!(e("daily").contains("five fields"));
        assert_eq!(e("0 2 * * MON-FRY"), "`FRY` is not in the day of week field's range 0-7 (or SUN-SAT)");
        assert!(e("@reboot").contains("runs at boot"), "{}", e("@reboot"));
        assert!(e("@fortnightly").contains("not a macro"), "{}", e("@fortnightly"));
    }

    /// Names and macros, as crontab(5), Kubernetes and GitHub Actions take
    /// them; every scheduler is given the numbers.
    #[test]
    fn names_and_macros_read_as_their_numbers() {
        let p = |s: &str| Schedule::parse(s).expect(s);
        let weekdays = p("0 2 * * mon-FRI");
        assert_eq!((weekdays.text.as_str(), weekdays.cron.as_str()), ("0 2 * * mon-FRI", "0 2 * * 1-5"));
        assert_eq!(weekdays.interval_secs, p("0 2 * * 1-5").interval_secs);
        assert_eq!(p("0 4 1 jan,Jul *").cron, "0 4 1 1,7 *");
        assert_eq!(p("30 1 * * SUN").interval_secs, 7 * 86_400);
        for (m, cron, gap) in [
            ("@hourly", "0 * * * *", 3600),
            ("@daily", "0 0 * * *", 86_400),
            ("@midnight", "0 0 * * *", 86_400),
            ("@weekly", "0 0 * * 0", 7 * 86_400),
            ("@monthly", "0 0 1 * *", 31 * 86_400),
        ] {
            let s = p(m);
            assert_eq!((s.text.as_str(), s.cron.as_str(), s.interval_secs), (m, cron, gap), "{m}");
        }
        // A day field starting with `*` makes cron match both day fields,
        // not either (Vixie cron, Kubernetes): odd days that are Mondays.
        let f = p("0 0 */2 * 1").fields();
        assert_eq!((f.days.map(|d| d.len()), f.weekdays, f.either), (Some(16), Some(vec![1]), false));
        assert!(p("0 0 1 * 1").fields().either);
        // Either field, and one of them every day: every day, as cron runs it.
        let f = p("0 0 1-31 * 1").fields();
        assert_eq!((f.days, f.weekdays), (None, None));
        assert_eq!(p("0 0 1-31 * 1").interval_secs, 86_400);
    }
}
