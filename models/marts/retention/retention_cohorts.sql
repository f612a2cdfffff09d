-- Retention cohorts (同期群): one row per cohort grain, cohort start, retention type, cohort
-- basis, retention mode, segment and period number. Periods are calendar periods of the cohort
-- grain counted from the cohort's own period (period 0).
{%- set max_periods = {
    'day': var('retention_max_periods_day'),
    'week': var('retention_max_periods_week'),
    'month': var('retention_max_periods_month'),
} %}
{%- set grains = var('retention_grains') %}
{%- set layer_grains = var('retention_layer_grains') | select('in', grains) | list %}
{%- set member_keys = ['user_id', 'cohort_grain', 'retention_type', 'cohort_basis', 'cohort_start_date'] %}
{#- Incremental by cohort. A cohort's cells change only while its last tracked period has not
    ended: a day-partitioned run recomputes, per grain, the cohorts starting on or after the
    period that began max_periods + 1 periods before its window's first day (day cohorts: the
    last ~31 days; week: 13 weeks; month: 13 months) and reads only their members' days. Older
    cohorts are final. Without the window (plain dbt build) every cohort is recomputed. -#}
{%- set window_start = day_window_start() %}
{%- set open_from = {} %}
{%- if window_start is not none %}
    {%- for grain in grains %}
        {%- do open_from.update({grain: period_start(grain, add_periods(grain, -(max_periods[grain] + 1), window_start))}) %}
    {%- endfor %}
{%- endif %}
{%- set incremental_run = is_incremental() and window_start is not none %}
{%- set open_cohorts = [] %}
{%- for grain, first_start in open_from.items() %}
    {%- do open_cohorts.append("(cohort_grain = '" ~ grain ~ "' and cohort_start_date >= " ~ first_start ~ ")") %}
{%- endfor %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[windowed_delete_hook(
            "delete from {{ this }} where " ~ (open_cohorts | join(' or ') or 'true')
        )],
    )
}}

with

user_days as {{ inline_cte() }} (
    select * from {{ ref('int_user_days_aggregated') }}
),

users as {{ inline_cte() }} (
    select * from {{ ref('users') }}
),

user_segments as (
    select * from {{ ref('int_user_segments_unpivoted') }}
),

user_layers as (
    select * from {{ ref('user_layers') }}
),

layer_dates as (
    select * from {{ ref('int_layer_dates_mapped') }}
),

data_dates as (
    -- The latest data date closes windows; never the wall clock (imported logs are historical).
    select max(activity_date) as latest_data_date
    from user_days
),

first_days as (
    select
        user_id,
        min(case when is_active then activity_date end) as first_active_date,
        min(case when has_paid_order then activity_date end) as first_paid_date
    from user_days
    group by user_id
),

anchors as (
    select user_id, 'activity' as retention_type, 'first_time' as cohort_basis,
        first_active_date as anchor_date
    from first_days
    where first_active_date is not null

    union all

    select user_id, 'purchase' as retention_type, 'first_time' as cohort_basis,
        first_paid_date as anchor_date
    from first_days
    where first_paid_date is not null

    union all

    select user_id, 'activity' as retention_type, 'signup' as cohort_basis,
        signup_date as anchor_date
    from users
    where signup_date is not null

    union all

    select user_id, 'purchase' as retention_type, 'signup' as cohort_basis,
        signup_date as anchor_date
    from users
    where signup_date is not null
),

selected_anchors as (
    select *
    from anchors
    where retention_type in ('{{ var("retention_types") | join("', '") }}')
        and cohort_basis in ('{{ var("retention_cohort_bases") | join("', '") }}')
),

-- Counting per member and segment would repeat every member-period once per segment (four
-- static dimensions plus the layer dimensions). Instead members are counted per static segment
-- profile (the set of a user's static segments as one key) and per layer combination, and the
-- counts are expanded to segment rows afterwards: the same sums over far fewer rows.
user_segment_profiles as (
    select
        user_id,
        {{ sorted_text_agg(dbt.concat(['segment_dimension', "'='", 'segment_value']), "'|'") }}
            as segment_profile
    from user_segments
    group by user_id
),

profile_segments as (
    select distinct
        user_segment_profiles.segment_profile,
        user_segments.segment_dimension,
        user_segments.segment_value
    from user_segments
    inner join user_segment_profiles
        on user_segments.user_id = user_segment_profiles.user_id
),

members as (
    {%- for grain in grains %}
    select
        user_id,
        '{{ grain }}' as cohort_grain,
        retention_type,
        cohort_basis,
        {{ period_start(grain, 'anchor_date') }} as cohort_start_date
    from selected_anchors
    {%- if incremental_run %}
    where {{ period_start(grain, 'anchor_date') }} >= {{ open_from[grain] }}
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

-- A member's static segment profile and, for var retention_layer_grains, its layers. Point in
-- time: the layer on the latest as-of date before the cohort start (int_layer_dates_mapped),
-- never a later one.
member_profiles as (
    select
        members.user_id,
        members.cohort_grain,
        members.retention_type,
        members.cohort_basis,
        members.cohort_start_date,
        user_segment_profiles.segment_profile,
        {%- if layer_grains %}
        members.cohort_grain in ('{{ layer_grains | join("', '") }}') as has_layers
        {%- else %}
        false as has_layers
        {%- endif %}
        {{- layer_columns('user_layers') }}
    from members
    -- left: a member without static segments still counts in the layer dimensions
    left join user_segment_profiles
        on members.user_id = user_segment_profiles.user_id
    left join layer_dates
        on members.cohort_start_date = layer_dates.date_day
    left join user_layers
        on members.user_id = user_layers.user_id
        and layer_dates.layer_as_of_date = user_layers.as_of_date
),

qualifying_days as (
    select user_id, 'activity' as retention_type, activity_date
    from user_days
    where is_active

    union all

    select user_id, 'purchase' as retention_type, activity_date
    from user_days
    where has_paid_order
),

user_periods as (
    {%- for grain in grains %}
    select distinct
        user_id,
        '{{ grain }}' as cohort_grain,
        retention_type,
        {{ period_start(grain, 'activity_date') }} as period_start_date
    from qualifying_days
    {%- if incremental_run %}
    where activity_date >= {{ open_from[grain] }}
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

member_periods as (
    {%- for grain in grains %}
    select
        member_profiles.*,
        {{ periods_between(grain, 'member_profiles.cohort_start_date', 'user_periods.period_start_date') }}
            as period_number
    from member_profiles
    inner join user_periods
        on member_profiles.user_id = user_periods.user_id
        and member_profiles.cohort_grain = user_periods.cohort_grain
        and member_profiles.retention_type = user_periods.retention_type
        and user_periods.period_start_date >= member_profiles.cohort_start_date
    where member_profiles.cohort_grain = '{{ grain }}'
        and {{ periods_between(grain, 'member_profiles.cohort_start_date', 'user_periods.period_start_date') }}
            <= {{ max_periods[grain] }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

-- Each member's last period with a qualifying day (unbounded retention counts a member in
-- every period up to it).
member_last_periods as (
    select
        {{ member_keys | join(',\n        ') }},
        segment_profile,
        has_layers
        {{- layer_columns('member_periods') }},
        max(period_number) as period_number
    from member_periods
    group by
        {{ member_keys | join(', ') }}, segment_profile, has_layers
        {{- layer_columns('member_periods') }}
),

{#- Members counted per cohort (and period) and profile or layer combination, then expanded to
    one row per segment: cohort sizes, classic retention (qualified in period N itself) and
    last periods (for unbounded retention). #}
{%- set countings = [
    ('cohort_profile_counts', 'member_profiles', false),
    ('classic_profile_counts', 'member_periods', true),
    ('last_period_profile_counts', 'member_last_periods', true),
] %}
{%- set cohort_keys = ['cohort_grain', 'retention_type', 'cohort_basis', 'cohort_start_date'] %}
{%- for name, relation, by_period in countings %}
{%- set keys = cohort_keys + (['period_number'] if by_period else []) %}
{{ name }} as (
    select
        {{ keys | join(',\n        ') }},
        segment_profile,
        count(*) as member_count
    from {{ relation }}
    group by {{ keys | join(', ') }}, segment_profile
),

{{ name | replace('profile_counts', 'layer_counts') }} as (
    select
        {{ keys | join(',\n        ') }}
        {{- layer_columns(relation) }},
        count(*) as member_count
    from {{ relation }}
    where has_layers
    group by {{ keys | join(', ') }}
        {{- layer_columns(relation) }}
),

{{ name | replace('profile_counts', 'layer_segment_counts') }} as (
    {{ unpivot_layers(name | replace('profile_counts', 'layer_counts'), keys + ['member_count']) }}
),

{{ name | replace('_profile_counts', '_segment_counts') }} as (
    select
        {{ keys | join(',\n        ') }},
        segment_dimension,
        segment_value,
        cast(sum(member_count) as bigint) as member_count
    from (
        select
            {%- for key in keys %}
            {{ name }}.{{ key }},
            {%- endfor %}
            profile_segments.segment_dimension,
            profile_segments.segment_value,
            {{ name }}.member_count
        from {{ name }}
        inner join profile_segments
            on {{ name }}.segment_profile = profile_segments.segment_profile

        union all

        select
            {{ keys | join(',\n            ') }},
            segment_dimension,
            segment_value,
            member_count
        from {{ name | replace('profile_counts', 'layer_segment_counts') }}
    ) as segment_rows
    group by {{ keys | join(', ') }}, segment_dimension, segment_value
),

{% endfor -%}

cohorts as (
    select
        {{ cohort_keys | join(',\n        ') }},
        segment_dimension,
        segment_value,
        member_count as cohort_size
    from cohort_segment_counts
),

classic_counts as (
    select
        {{ cohort_keys | join(',\n        ') }},
        segment_dimension,
        segment_value,
        period_number,
        member_count as retained_users
    from classic_segment_counts
),

last_period_counts as (
    select
        {{ cohort_keys | join(',\n        ') }},
        segment_dimension,
        segment_value,
        period_number as last_period_number,
        member_count as users_with_last_period
    from last_period_segment_counts
),

period_numbers as (
    select cast(generated_number - 1 as integer) as period_number
    from ({{ dbt.generate_series(max_periods.values() | max + 1) }}) as numbers
),

cells as (
    -- Every period whose window has started by the latest data date.
    {%- for grain in grains %}
    select
        cohorts.cohort_grain,
        cohorts.retention_type,
        cohorts.cohort_basis,
        cohorts.cohort_start_date,
        cohorts.segment_dimension,
        cohorts.segment_value,
        cohorts.cohort_size,
        period_numbers.period_number,
        {{ add_periods(grain, 'period_numbers.period_number', 'cohorts.cohort_start_date') }}
            as period_start_date,
        {{ dbt.dateadd('day', -1, add_periods(grain, 'period_numbers.period_number + 1', 'cohorts.cohort_start_date')) }}
            as period_end_date,
        {{ dbt.dateadd('day', -1, add_periods(grain, max_periods[grain] + 1, 'cohorts.cohort_start_date')) }}
            as horizon_end_date,
        data_dates.latest_data_date
    from cohorts
    cross join period_numbers
    cross join data_dates
    where cohorts.cohort_grain = '{{ grain }}'
        and period_numbers.period_number <= {{ max_periods[grain] }}
        and {{ add_periods(grain, 'period_numbers.period_number', 'cohorts.cohort_start_date') }}
            <= data_dates.latest_data_date
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

classic_cells as (
    select
        cells.cohort_grain,
        cells.cohort_start_date,
        cells.retention_type,
        cells.cohort_basis,
        'classic' as retention_mode,
        cells.segment_dimension,
        cells.segment_value,
        cells.period_number,
        cells.period_start_date,
        cast(cells.period_end_date as date) as window_end_date,
        cells.cohort_size,
        coalesce(classic_counts.retained_users, 0) as retained_users,
        cells.latest_data_date
    from cells
    left join classic_counts
        on cells.cohort_grain = classic_counts.cohort_grain
        and cells.retention_type = classic_counts.retention_type
        and cells.cohort_basis = classic_counts.cohort_basis
        and cells.cohort_start_date = classic_counts.cohort_start_date
        and cells.segment_dimension = classic_counts.segment_dimension
        and cells.segment_value = classic_counts.segment_value
        and cells.period_number = classic_counts.period_number
),

unbounded_cells as (
    -- Unbounded: the user qualified in period N or any later tracked period.
    select
        cells.cohort_grain,
        cells.cohort_start_date,
        cells.retention_type,
        cells.cohort_basis,
        'unbounded' as retention_mode,
        cells.segment_dimension,
        cells.segment_value,
        cells.period_number,
        cells.period_start_date,
        cast(cells.horizon_end_date as date) as window_end_date,
        cells.cohort_size,
        coalesce(sum(last_period_counts.users_with_last_period), 0) as retained_users,
        cells.latest_data_date
    from cells
    left join last_period_counts
        on cells.cohort_grain = last_period_counts.cohort_grain
        and cells.retention_type = last_period_counts.retention_type
        and cells.cohort_basis = last_period_counts.cohort_basis
        and cells.cohort_start_date = last_period_counts.cohort_start_date
        and cells.segment_dimension = last_period_counts.segment_dimension
        and cells.segment_value = last_period_counts.segment_value
        and last_period_counts.last_period_number >= cells.period_number
    group by
        cells.cohort_grain, cells.cohort_start_date, cells.retention_type, cells.cohort_basis,
        cells.segment_dimension, cells.segment_value, cells.period_number,
        cells.period_start_date, cells.horizon_end_date, cells.cohort_size,
        cells.latest_data_date
),

all_cells as (
    select * from classic_cells
    union all
    select * from unbounded_cells
),

final as (
    select
        cohort_grain,
        cohort_start_date,
        retention_type,
        cohort_basis,
        retention_mode,
        segment_dimension,
        segment_value,
        period_number,
        period_start_date,
        window_end_date,
        cohort_size,
        cast(retained_users as bigint) as retained_users,
        {{ safe_ratio('retained_users', 'cohort_size') }} as retention_rate,
        window_end_date > latest_data_date as is_provisional
    from all_cells
)

select * from final
