{#-
    New files only: a day-partitioned run of base_landing__events re-reads the landing files of
    its whole load window (start_date - incremental_lookback_days on) only when it has to. When
    every file of the window it loaded before is still there unchanged (same path, size and
    modification time, kept on every row as source_file_bytes / source_file_modified_at) and
    every file it has not loaded yet sorts after them (the order duplicates are ranked in, so
    earlier files keep winning), it reads just those new files and deletes nothing: the usual
    case of a new day's folder arriving. Anything else (a file changed, removed, delivered late
    into an earlier position, the landing folder moved) falls back to re-reading the window.
    100 M events: the day run read 5.9 M rows of four load days instead of the new day's 1.5 M.
-#}

{#- Size and modification time of every file of a landing table: (filename, bytes,
    modified_at). DuckDB reads them with read_blob, which never reads the content. -#}
{% macro landing_file_stats(table_name) %}
    {{- return(adapter.dispatch('landing_file_stats', 'userops')(table_name)) -}}
{% endmacro %}

{% macro duckdb__landing_file_stats(table_name) -%}
    select
        filename,
        cast(size as bigint) as bytes,
        cast(last_modified as timestamp) as modified_at
    from read_blob({{ sql_string_literal(landing_glob(table_name)) }})
{%- endmacro %}

{#- Elsewhere the stats are not kept (the model is a table there, rebuilt in full). -#}
{% macro default__landing_file_stats(table_name) -%}
    select
        cast(null as {{ dbt.type_string() }}) as filename,
        cast(null as bigint) as bytes,
        cast(null as timestamp) as modified_at
    where 1 = 0
{%- endmacro %}


{#- Files the run must read when only new files arrived in the load window (a list, possibly
    empty), or none when it has to re-read the whole window (or is not a windowed incremental
    run). Called when the model compiles and again by its pre-hook; nothing changes in between. -#}
{% macro landing_new_files_only(table_name, relation) %}
    {%- if not execute or relation is none or load_window_first_day() is none
        or target.type != 'duckdb' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set listing = run_query(
        "select filename, cast(bytes as varchar), cast(modified_at as varchar)"
        ~ " from (" ~ landing_file_stats(table_name) ~ ") as files"
        ~ " where " ~ in_load_window('filename') ~ " order by filename") -%}
    {%- set stored = run_query(
        "select source_file, cast(min(source_file_bytes) as varchar),"
        ~ " cast(max(source_file_bytes) as varchar),"
        ~ " cast(min(source_file_modified_at) as varchar),"
        ~ " cast(max(source_file_modified_at) as varchar)"
        ~ " from " ~ relation ~ " where " ~ in_load_window('source_file')
        ~ " group by source_file") -%}
    {%- set current = {} -%}
    {%- for row in listing.rows -%}
        {%- do current.update({row[0]: [row[1], row[2]]}) -%}
    {%- endfor -%}
    {%- set ns = namespace(last_loaded='') -%}
    {%- for row in stored.rows -%}
        {#- Rows of one file must all carry the stats the file has now. -#}
        {%- if row[0] not in current or row[1] is none or row[1] != row[2] or row[3] != row[4]
            or current[row[0]] != [row[1], row[3]] -%}
            {{ return(none) }}
        {%- endif -%}
        {%- set key = row[0] | replace('.parquet', '') -%}
        {%- if key > ns.last_loaded -%}
            {%- set ns.last_loaded = key -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set loaded = stored.columns[0].values() -%}
    {%- set new_files = [] -%}
    {%- for file in current -%}
        {%- if file not in loaded -%}
            {%- if (file | replace('.parquet', '')) <= ns.last_loaded -%}
                {{ return(none) }}
            {%- endif -%}
            {%- do new_files.append(file) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(new_files) }}
{% endmacro %}


{#- Condition on the file-name column for the rows a run reads: the new files, or the load
    window. -#}
{% macro in_files_to_read(file_column, new_files) -%}
    {%- if new_files is none -%}
        {{ in_load_window(file_column) }}
    {%- elif new_files | length == 0 -%}
        1 = 0
    {%- else -%}
        {%- set literals = [] -%}
        {%- for file in new_files -%}
            {%- do literals.append(sql_string_literal(file)) -%}
        {%- endfor -%}
        {{ file_column }} in ({{ literals | join(', ') }})
    {%- endif -%}
{%- endmacro %}
