-- One row per user, tag value and unbroken run of as-of dates carrying it: point-in-time tag
-- history (SCD type 2 on the as-of grain). "Who had tag X = v on date D" is
-- valid_from <= D and (valid_to is null or D < valid_to), for D from the first as-of date on.
--
-- Incremental. A day-partitioned run (vars start_date / end_date) reads only the tags of its
-- as-of dates (from the first one on or after start_date - incremental_lookback_days, here the
-- run's first as-of date) and the runs still open there:
-- - runs that start on or after the run's first as-of date are deleted and built again;
-- - a run that started before it and was open on it (valid_to null or not before it) covered
--   every as-of date up to the one before; it continues if the tag holds on the run's first
--   as-of date, else it ends there (valid_to = that date);
-- - runs that ended before stay as they are; the history's first as-of date moving on (var
--   layers_history_days) trims them as a full build would;
-- - a carried run that is still open after the run is left as it is, not written again: most
--   runs are open tags that keep holding (100 M events: ~6 M of them rewritten every day).
-- Without the vars every run rebuilds all history, as a table would.
{%- set incremental_run = is_incremental() and day_window_start() is not none %}
{%- set run_start = "(select min(as_of_date) from {{ ref('int_as_of_dates_selected') }} where "
    ~ in_as_of_window('as_of_date') ~ ")" %}
{%- set history_start = "(select min(as_of_date) from {{ ref('int_as_of_dates_selected') }})" %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='delete+insert',
        unique_key=['user_id', 'tag_code', 'tag_value', 'valid_from'],
        on_schema_change='fail',
        pre_hook=[windowed_delete_hook(
            "delete from {{ this }} where valid_from >= " ~ run_start ~ ";"
            ~ " delete from {{ this }} where valid_to <= " ~ history_start ~ ";"
            ~ " update {{ this }} set valid_from = " ~ history_start
            ~ " where valid_from < " ~ history_start
        )],
    )
}}

with

tags as (
    select * from {{ ref('int_user_tags_evaluated') }}
    {{ as_of_window_where('as_of_date') }}
),

as_of_dates as (
    select * from {{ ref('int_as_of_dates_selected') }}
),

{% if incremental_run -%}
previous_history as (
    select * from {{ this }}
),

run_dates as (
    select min(as_of_date) as first_run_date
    from as_of_dates
    where {{ in_as_of_window('as_of_date') }}
),

-- Runs open on the run's first as-of date; the pre-hook removed those starting on or after it.
carried_runs as (
    select
        previous_history.user_id,
        previous_history.tag_code,
        previous_history.tag_value,
        previous_history.category,
        previous_history.valid_from,
        previous_history.valid_to,
        run_dates.first_run_date
    from previous_history
    cross join run_dates
    where previous_history.valid_to is null
        or previous_history.valid_to >= run_dates.first_run_date
),

{% endif -%}

tags_indexed as (
    select
        tags.user_id,
        tags.tag_code,
        tags.tag_value,
        tags.category,
        as_of_dates.as_of_date,
        as_of_dates.as_of_index,
        -- Constant within a run of consecutive as-of dates with the same value (gaps and islands).
        as_of_dates.as_of_index - row_number() over (
            partition by tags.user_id, tags.tag_code, tags.tag_value
            order by as_of_dates.as_of_index
        ) as run_key
    from tags
    inner join as_of_dates
        on tags.as_of_date = as_of_dates.as_of_date
),

tag_runs as (
    select
        user_id,
        tag_code,
        tag_value,
        category,
        min(as_of_date) as valid_from,
        max(as_of_index) as last_as_of_index
    from tags_indexed
    group by user_id, tag_code, tag_value, category, run_key
),

{% if incremental_run -%}
runs as (
    -- A run starting on the run's first as-of date continues a carried run of the same value.
    select
        tag_runs.user_id,
        tag_runs.tag_code,
        tag_runs.tag_value,
        tag_runs.category,
        coalesce(carried_runs.valid_from, tag_runs.valid_from) as valid_from,
        tag_runs.last_as_of_index,
        carried_runs.user_id is not null and carried_runs.valid_to is null as was_open
    from tag_runs
    left join carried_runs
        on tag_runs.user_id = carried_runs.user_id
        and tag_runs.tag_code = carried_runs.tag_code
        and tag_runs.tag_value = carried_runs.tag_value
        and tag_runs.valid_from = carried_runs.first_run_date

    union all

    -- A carried run whose tag no longer holds ends on the as-of date before the run's first.
    select
        carried_runs.user_id,
        carried_runs.tag_code,
        carried_runs.tag_value,
        carried_runs.category,
        carried_runs.valid_from,
        first_run_dates.as_of_index - 1 as last_as_of_index,
        false as was_open
    from carried_runs
    inner join as_of_dates as first_run_dates
        on carried_runs.first_run_date = first_run_dates.as_of_date
    left join tag_runs
        on carried_runs.user_id = tag_runs.user_id
        and carried_runs.tag_code = tag_runs.tag_code
        and carried_runs.tag_value = tag_runs.tag_value
        and carried_runs.first_run_date = tag_runs.valid_from
    where tag_runs.user_id is null
),
{%- else -%}
runs as (
    select
        *,
        false as was_open
    from tag_runs
),
{%- endif %}

final as (
    select
        runs.user_id,
        runs.tag_code,
        runs.tag_value,
        runs.category,
        runs.valid_from,
        next_dates.as_of_date as valid_to,
        next_dates.as_of_date is null as is_current
    from runs
    left join as_of_dates as next_dates
        on runs.last_as_of_index + 1 = next_dates.as_of_index
    -- Open before and still open: the stored row is already this row.
    where not (runs.was_open and next_dates.as_of_date is null)
)

select * from final
