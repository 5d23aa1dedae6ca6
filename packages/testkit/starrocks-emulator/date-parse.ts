// How StarRocks reads a DATE or DATETIME from text (be/src/types/date_value.cpp, timestamp_value.cpp).

export interface DateParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  micro: number;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (year: number) => year % 4 === 0 && (year % 100 !== 0 || (year % 400 === 0 && year !== 0));
const daysIn = (year: number, month: number) => (month === 2 && isLeap(year) ? 29 : DAYS[month - 1]!);
const digit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isSpace = (c: string | undefined) => c !== undefined && ' \t\n\v\f\r'.includes(c);
const isPunct = (c: string | undefined) => c !== undefined && /^[!-/:-@[-`{-~]$/.test(c);

/**
 * types/date_value.cpp + types/timestamp_value.cpp `from_string` → util `date::from_string_to_date` /
 * `date::from_string_to_datetime`: a fixed "YYYY-MM-DD[ HH:MM:SS]" fast path, else the lenient
 * `date::from_string` scan, which reads digit groups split by punctuation, allows a space only after the day
 * and after the seconds' fraction, and stops at the first character that is neither — so anything after a
 * valid date is ignored ("0044-03-15 BC" is 0044-03-15, "2024-01-01 10:00:00+02" is 10:00:00). Then
 * `date::check` / `timestamp::check`: year ≤ 9999, a real month/day, hour < 24, minute/second < 60.
 */
export function parseDateTime(text: string, dateOnly: boolean): DateParts | undefined {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text[start])) start++;
  while (start < end && isSpace(text[end - 1])) end--;
  const s = text.slice(start, end);
  let parts: DateParts | undefined;
  if (s.length === 10) parts = fixedDate(s) ?? lenient(text);
  else if (!dateOnly && s.length >= 19 && digit(s[9])) {
    let time: number | undefined;
    if (s[10] === 'T' && digit(s[11]) && s.length === 19) time = 11;
    else if ([...s.slice(10, s.length - 8)].every(isSpace)) time = s.length - 8;
    parts = (time === undefined ? undefined : fixedDateTime(s, time)) ?? lenient(text);
  } else parts = lenient(text);
  if (!parts) return undefined;
  const { year, month, day, hour, minute, second, micro } = parts;
  if (year > 9999 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (!dateOnly && (hour > 23 || minute > 59 || second > 59 || micro > 999_999)) return undefined;
  return parts;
}

function fixedDate(s: string): DateParts | undefined {
  const ok =
    [0, 1, 2, 3, 5, 6, 8, 9].every((i) => digit(s[i])) && !digit(s[4]) && !digit(s[7]) && s.length >= 10;
  if (!ok) return undefined;
  const year = Number(s.slice(0, 4));
  const month = Number(s.slice(5, 7));
  const day = Number(s.slice(8, 10));
  if (month > 12 || month < 1 || day > daysIn(year, month)) return undefined;
  return { year, month, day, hour: 0, minute: 0, second: 0, micro: 0 };
}

function fixedDateTime(s: string, time: number): DateParts | undefined {
  const date = fixedDate(s.slice(0, 10));
  const t = s.slice(time);
  if (!date || ![0, 1, 3, 4, 6, 7].every((i) => digit(t[i])) || digit(t[2]) || digit(t[5])) return undefined;
  const [hour, minute, second] = [t.slice(0, 2), t.slice(3, 5), t.slice(6, 8)].map(Number) as [
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  return { ...date, hour, minute, second };
}

/** util `date::from_string`, re-written: the MySQL-compatible scan (see parseDateTime). */
function lenient(text: string): DateParts | undefined {
  const spaceAllowed = new Set([2, 6]);
  const maxParts = 8;
  const end = text.length;
  let p = 0;
  while (p < end && isSpace(text[p])) p++;
  if (p === end || !digit(text[p])) return undefined;
  let q = p;
  while (q < end && (digit(text[q]) || text[q] === 'T')) q++;
  const run = q - p;
  let yearLength = 4;
  let compact = false;
  if (q === end || text[q] === '.') {
    yearLength = run === 4 || run === 8 || run >= 14 ? 4 : 2;
    compact = true;
  }
  const values: number[] = [];
  const lengths: number[] = [];
  let field = 0;
  let fieldLength = yearLength;
  while (p < end && digit(text[p]) && field < maxParts - 1) {
    const from = p;
    let value = 0;
    const toDelimiter = !compact && field !== 6;
    while (p < end && digit(text[p]) && (toDelimiter || fieldLength-- > 0))
      value = value * 10 + Number(text[p++]);
    if (value > 999_999) return undefined;
    values[field] = value;
    lengths[field] = p - from;
    fieldLength = 2;
    if (p === end) {
      field++;
      break;
    }
    if (field === 2 && text[p] === 'T') {
      p++;
      field++;
      continue;
    }
    if (field === 5) {
      if (text[p] === '.') {
        p++;
        fieldLength = 6;
      } else if (digit(text[p])) {
        field++;
        break;
      }
      field++;
      continue;
    }
    while (p < end && (isPunct(text[p]) || isSpace(text[p]))) {
      if (isSpace(text[p]) && !spaceAllowed.has(field)) return undefined;
      p++;
    }
    field++;
  }
  if (field < 3) return undefined;
  if (!compact) yearLength = lengths[0]!;
  let year = values[0]!;
  if (yearLength === 2) year += year < 70 ? 2000 : 1900;
  let micro = values[6] ?? 0;
  if (micro && (lengths[6] ?? 0) < 6) micro *= 10 ** (6 - (lengths[6] ?? 0));
  return {
    year,
    month: values[1] ?? 0,
    day: values[2] ?? 0,
    hour: values[3] ?? 0,
    minute: values[4] ?? 0,
    second: values[5] ?? 0,
    micro,
  };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export function formatDate({ year, month, day }: DateParts): string {
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

export function formatDateTime(parts: DateParts): string {
  const base = `${formatDate(parts)} ${pad(parts.hour)}:${pad(parts.minute)}:${pad(parts.second)}`;
  return parts.micro ? `${base}.${pad(parts.micro, 6)}` : base;
}
