{#-
    The quarantine rules shared by every base_landing__ model. `checks` is a list of
    (reason_code, condition) pairs; the first that holds is the row's reason, in the contract's
    priority order (docs/landing_contract.md):
    missing_key, missing_value, unparseable_value, invalid_value, bad_timestamp, negative_amount.
    `duplicate` is decided after these, among rows that passed them (quarantine_duplicates).
-#}
{% macro first_failed_check(checks) -%}
    case
    {%- for reason, condition in checks %}
        when {{ condition }} then '{{ reason }}'
    {%- endfor %}
    end
{%- endmacro %}


{#- Present but not castable to its type. A number with a fraction where an integer is expected
    (2.5 units) is unparseable too: casts round it (to 2 or 3, by engine and input type), which
    would stage a value nobody sent. -#}
{% macro unparseable(column, data_type) -%}
    {%- if data_type | lower in ('integer', 'int', 'bigint', 'smallint') -%}
    ({{ column }} is not null and ({{ safe_cast(column, data_type) }} is null
        or {{ safe_cast(column, 'double') }} <> {{ safe_cast(column, data_type) }}))
    {%- else -%}
    ({{ column }} is not null and {{ safe_cast(column, data_type) }} is null)
    {%- endif -%}
{%- endmacro %}


{#- Outside the plausible range: before var min_valid_timestamp or after the build + max_future_days. -#}
{% macro out_of_range_timestamp(typed_column) -%}
    ({{ typed_column }} < cast('{{ var("min_valid_timestamp") }}' as timestamp)
        or {{ typed_column }} > {{ dbt.dateadd('day', var('max_future_days'), utc_now()) }})
{%- endmacro %}


{#-
    Final reason per row: the first failed check, else `duplicate` when an earlier valid row has
    the same key. "Earlier" = first by source file name (load day, then part), then `order_by`.
    Rows that failed a check never shadow a valid row with the same key.
    The file name is compared without its extension, so a re-delivered copy named after the
    original (part-0-replay.parquet, "part-0 (1).parquet") comes after it: plain name order
    would put it first, as '-' and ' ' sort before '.', and quarantine the original instead.
-#}
{% macro quarantine_duplicates(key_columns, order_by) -%}
    coalesce(
        check_reason,
        case
            when row_number() over (
                partition by {{ key_columns | join(', ') }}, check_reason is null
                order by replace(source_file, '.{{ var("landing_format", "parquet") }}', ''), {{ order_by }}
            ) > 1 then 'duplicate'
        end
    )
{%- endmacro %}


{#-
    Contract check on column types, called by landing_table_ready: problems such as "file F has
    column 'event_time' of type BIGINT, ..." for columns of a type that cannot be read as the
    declared one. A file like that would otherwise stop the build with a DuckDB read error whose
    hint does not apply (an epoch number where other files have timestamps), or worse, set the
    type every other file is read as (one file's struct `properties` turns every JSON text of
    the table unparseable). Accepted: text for any column; numbers for text and number columns
    (ids may be integers, amounts doubles); booleans for text; dates and timestamps, with or
    without zone, for date and timestamp columns. Spark merges schemas its own way: no check.
-#}
{% macro landing_type_problems(table_name, pattern) %}
    {{- return(adapter.dispatch('landing_type_problems', 'userops')(table_name, pattern)) -}}
{% endmacro %}

{% macro default__landing_type_problems(table_name, pattern) %}
    {{- return([]) -}}
{% endmacro %}

{% macro duckdb__landing_type_problems(table_name, pattern) %}
    {%- if var('landing_format', 'parquet') != 'parquet' -%}
        {#- CSV columns are typed by DuckDB's sniffer, which falls back to text when unsure. -#}
        {{- return([]) -}}
    {%- endif -%}
    {%- set declared = landing_columns(table_name) -%}
    {%- set accepted = {
        'text': ['text', 'number', 'boolean'],
        'number': ['text', 'number'],
        'moment': ['text', 'date', 'timestamp'],
    } -%}
    {%- set described = {
        'text': 'text (or a number)',
        'number': 'a number (or numeric text)',
        'moment': 'a date or timestamp (or ISO-8601 text)',
    } -%}
    {#- First occurrence of each declared name per file: the top-level column (nested fields
        follow their parent in schema order). -#}
    {%- set result = run_query(
        "select file_name, lower(name), arg_min(duckdb_type, column_id) from parquet_schema("
        ~ sql_string_literal(pattern) ~ ") where lower(name) in ('" ~ (declared.keys() | join("', '"))
        ~ "') group by all order by all") -%}
    {%- set problems = [] -%}
    {%- for file, column, found in result.rows -%}
        {%- set declared_type = declared[column].data_type | lower -%}
        {%- set expected = 'moment' if declared_type in ('timestamp', 'date')
            else 'text' if declared_type == 'varchar' else 'number' -%}
        {%- set found_upper = found | upper -%}
        {%- if '[' in found_upper or found_upper.startswith(('STRUCT', 'MAP', 'UNION')) -%}
            {%- set kind = 'nested' -%}
        {%- elif found_upper == 'VARCHAR' -%}
            {%- set kind = 'text' -%}
        {%- elif found_upper == 'BOOLEAN' -%}
            {%- set kind = 'boolean' -%}
        {%- elif found_upper == 'DATE' -%}
            {%- set kind = 'date' -%}
        {%- elif found_upper.startswith('TIMESTAMP') -%}
            {%- set kind = 'timestamp' -%}
        {%- elif found_upper.startswith('DECIMAL') or found_upper in (
            'TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT',
            'UINTEGER', 'UBIGINT', 'UHUGEINT', 'FLOAT', 'DOUBLE') -%}
            {%- set kind = 'number' -%}
        {%- else -%}
            {#- BLOB (bytes without a UTF-8 annotation), TIME, UUID, INTERVAL, ... -#}
            {%- set kind = 'other' -%}
        {%- endif -%}
        {%- if kind not in accepted[expected] -%}
            {%- do problems.append(
                "file " ~ file ~ " has column '" ~ column ~ "' of type " ~ found
                ~ ", where the contract expects " ~ described[expected]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(problems) -}}
{% endmacro %}
