/**
 * MySQL and MariaDB settings that decide how the server reads statement text. The facts are read
 * as the server reads text with the sql_mode and character set the engine checks at login; a
 * statement that changes one of them to a value the facts cannot follow is refused by the
 * built-in rule (rule-matcher.ts), before any policy rule.
 *
 *   sql_mode              ANSI_QUOTES ("…" is a name, not a string), NO_BACKSLASH_ESCAPES (`\'`
 *                         ends a string), PIPES_AS_CONCAT (`||` is not OR), HIGH_NOT_PRECEDENCE,
 *                         IGNORE_SPACE (built-in names become reserved), ANSI and the other
 *                         combination modes, MariaDB's ORACLE (another grammar)
 *   character_set_client  bytes → characters (SET NAMES, SET CHARACTER SET, SET CHARSET)
 *   database              which database an unqualified name resolves to (USE)
 */

/** sql_mode values that leave the reading of text unchanged (MySQL 8.4, MariaDB 11). */
const SAFE_SQL_MODES = new Set([
  'allow_invalid_dates', 'error_for_division_by_zero', 'no_auto_create_user', 'no_auto_value_on_zero',
  'no_dir_in_create', 'no_engine_substitution', 'no_field_options', 'no_key_options', 'no_table_options',
  'no_unsigned_subtraction', 'no_zero_date', 'no_zero_in_date', 'only_full_group_by', 'pad_char_to_full_length',
  'real_as_float', 'strict_all_tables', 'strict_trans_tables', 'time_truncate_fractional', 'traditional',
  'empty_string_is_null', 'simultaneous_assignment', 'time_round_fractional',
]);

const READABLE_CHARSETS = new Set(['utf8mb4', 'utf8', 'utf8mb3']);

/**
 * Whether an sql_mode value (a comma-separated list of mode names, as SET or `@@sql_mode` give
 * it) is provably free of every mode that changes how text is read. A number (a bit mask), an
 * unknown name or any other form is not.
 */
export function sqlModeKeepsReading(value: string): boolean {
  if (value.trim() === '') return true;
  return value.split(',').every((mode) => SAFE_SQL_MODES.has(mode.trim().toLowerCase()));
}

/** Whether a character set name keeps client text read as UTF-8 (utf8mb4, or utf8/utf8mb3, its subset). */
export function clientCharsetKeepsReading(value: string): boolean {
  return READABLE_CHARSETS.has(value.trim().toLowerCase());
}

/** Settings a MySQL statement changes, by the names facts report in `parserSettings`. */
export const MYSQL_PARSER_SETTINGS = ['sql_mode', 'character_set_client', 'database'] as const;

/**
 * Whether setting system variable `name` to `value` (undefined: not one plain literal or word,
 * or DEFAULT) may change how text is read; `name` without `@@` and scope, any case.
 * Returns the setting's name for `parserSettings`, or undefined when the change is harmless.
 */
export function changedMysqlSetting(name: string, value: string | undefined): string | undefined {
  switch (name.toLowerCase()) {
    case 'sql_mode':
      return value !== undefined && sqlModeKeepsReading(value) ? undefined : 'sql_mode';
    case 'character_set_client':
      return value !== undefined && clientCharsetKeepsReading(value) ? undefined : 'character_set_client';
    default:
      return undefined;
  }
}
