{#-
    The windows of a day-partitioned run: the business days [start_date, end_date), end
    exclusive (docs/orchestration.md). Dagster passes them as the environment variables
    USEROPS_WINDOW_START / USEROPS_WINDOW_END; `dbt build --vars '{start_date: ..., end_date: ...}'`
    works too and wins. Vars on the command line make dbt re-parse the whole project (its partial
    parse is keyed on them), so a Dagster step would pay a full parse per run; an environment
    variable read here only re-parses the files that read it. Two kinds of incremental model use them:

    - by business day (int_user_*_aggregated, ...): a run recomputes the days
      [start_date - incremental_lookback_days, end_date);
    - by load day (base_landing__events): a run re-reads the landing files of load days (the
      `dt=` folder) from start_date - incremental_lookback_days on, so files delivered for the
      last few days, late or again, are picked up, and older files are not read at all; when
      only new files arrived, it reads just those (macros/incremental/new_files.sql).

    Without the vars (plain `dbt build`, the CLI) every run recomputes all history, as a table
    would. A pre-hook deletes the window's rows and the model inserts them again, so rerunning a
    day is idempotent. Hooks are rendered when they run, so `this` is the run's relation.
-#}

{#- The window's first business day as YYYY-MM-DD text, or none without a window. -#}
{% macro window_start_date() %}
    {{ return(var('start_date', none) or env_var('USEROPS_WINDOW_START', '') or none) }}
{% endmacro %}


{#- The window's end (exclusive) as YYYY-MM-DD text, or none. -#}
{% macro window_end_date() %}
    {{ return(var('end_date', none) or env_var('USEROPS_WINDOW_END', '') or none) }}
{% endmacro %}


{#- First business day a partitioned run recomputes, as a SQL date, or none for all history. -#}
{% macro day_window_start() %}
    {%- set start_date = window_start_date() -%}
    {%- if not start_date -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(dbt.dateadd('day', -var('incremental_lookback_days'), "cast('" ~ start_date ~ "' as date)")) }}
{% endmacro %}


{% macro day_window_end() %}
    {%- set end_date = window_end_date() -%}
    {{ return("cast('" ~ end_date ~ "' as date)" if end_date else none) }}
{% endmacro %}


{#- Condition on a business-day column: inside the run's window (true without one). -#}
{% macro in_day_window(date_column) -%}
    {%- set start = day_window_start() -%}
    {%- set end = day_window_end() -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ date_column }} >= {{ start }}{% if end %} and {{ date_column }} < {{ end }}{% endif %}
    {%- endif -%}
{%- endmacro %}


{#- `where` clause for reading the window's days from an upstream model; empty on a full build
    or when the model is built from scratch. -#}
{% macro day_window_where(date_column) -%}
    {%- if is_incremental() and day_window_start() is not none -%}
        where {{ in_day_window(date_column) }}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook deleting the rows a run recomputes: the window's days, or every row. -#}
{% macro day_window_delete_hook(date_column) -%}
    {%- set condition = in_day_window(date_column) -%}
    {{- return("{% if is_incremental() %}delete from {{ this }} where " ~ condition ~ "{% endif %}") -}}
{%- endmacro %}


{#- Pre-hook of an incremental model with its own window logic: `windowed_sql` (rendered when the
    hook runs) in a partitioned run; without a window, every row, so a plain build recomputes all
    history like a table instead of appending it to the rows already there. -#}
{% macro windowed_delete_hook(windowed_sql) -%}
    {%- if day_window_start() is not none -%}
        {{- return("{% if is_incremental() %}" ~ windowed_sql ~ "{% endif %}") -}}
    {%- endif -%}
    {{- return("{% if is_incremental() %}delete from {{ this }}{% endif %}") -}}
{%- endmacro %}


{#- First load day of a partitioned run's window (YYYY-MM-DD text), or none without a window. -#}
{% macro load_window_first_day() %}
    {%- set start_date = window_start_date() -%}
    {%- if not start_date -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set first_day = modules.datetime.date.fromisoformat(start_date)
        - modules.datetime.timedelta(days=var('incremental_lookback_days')) -%}
    {{ return(first_day.isoformat()) }}
{% endmacro %}


{#- Load day of a landing file: the YYYY-MM-DD of its `dt=` folder ('' outside one). Read from
    the path's own folder name, so rows loaded before the landing folder moved or was
    reached through another path still match. DuckDB skips the files this rules out. -#}
{% macro load_day_of(file_column) -%}
    regexp_extract({{ file_column }}, '/dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/', 1)
{%- endmacro %}


{#- Condition on a file-name column: the file is in the run's load window (true without one). -#}
{% macro in_load_window(file_column) -%}
    {%- set first_day = load_window_first_day() -%}
    {%- if first_day is none -%}
        true
    {%- else -%}
        {{ load_day_of(file_column) }} >= '{{ first_day }}'
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of a model incremental by load day: delete the rows of the window's files, unless
    the run reads only new files (macros/incremental/new_files.sql). -#}
{% macro load_window_delete_hook(table_name) -%}
    {%- set condition = in_load_window('source_file') -%}
    {{- return("{% if is_incremental() and landing_new_files_only('" ~ table_name
        ~ "', this) is none %}delete from {{ this }} where " ~ condition ~ "{% endif %}") -}}
{%- endmacro %}


{#- As-of models (one row per user and as-of date, int_as_of_dates_selected) are incremental by
    as-of date: a partitioned run recomputes the as-of dates from the window's first day on (the
    latest data day, and a week or month close the window holds) and drops as-of dates that are
    no longer selected (yesterday's "latest data day", dates past layers_history_days). Older
    as-of dates keep their rows: their facts end on the as-of date, before the window. -#}
{% macro in_as_of_window(as_of_column) -%}
    {%- set start = day_window_start() -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ as_of_column }} >= {{ start }}
    {%- endif -%}
{%- endmacro %}


{#- `where` clause reading the run's as-of dates from an upstream as-of model; empty on a full
    build or when the model is built from scratch. -#}
{% macro as_of_window_where(as_of_column) -%}
    {%- if is_incremental() and day_window_start() is not none -%}
        where {{ in_as_of_window(as_of_column) }}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of an as-of model: delete the run's as-of dates and those no longer selected (every
    row without a window). `selected` is the model it reads its as-of dates from (a ref of the
    model already, rendered when the hook runs). -#}
{% macro as_of_window_delete_hook(selected) -%}
    {%- set condition = in_as_of_window('as_of_date') -%}
    {%- if condition != 'true' -%}
        {%- set condition = condition ~ " or as_of_date not in (select as_of_date from {{ ref('"
            ~ selected ~ "') }})" -%}
    {%- endif -%}
    {{- return("{% if is_incremental() %}delete from {{ this }} where " ~ condition ~ "{% endif %}") -}}
{%- endmacro %}
