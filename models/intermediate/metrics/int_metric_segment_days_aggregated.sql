-- One row per day and segment with every daily metric of the catalogue (seeds/metric_catalogue):
-- the single place daily metric formulas live. daily_metrics is its overall row, metric_values
-- its long form. Segments: the user's static attributes, and the layers (user_layers) as of
-- the day: the latest as-of date before it (int_layer_dates_mapped), never a later one.
--
-- Incremental by metric day. A day's row can change for as long as a window that ends after it
-- is still open: WAU/MAU (30 days), the ROI and activation windows of its new users, D30
-- retention. A day-partitioned run therefore recomputes the days from its window's first day
-- back by the longest of those windows plus one (`restated_days`) and reads only the facts from
-- there on; WAU/MAU intervals are cut at that day (a user's covered intervals never overlap, so
-- the running sum from there counts the users covering each day), reactivations look back at
-- the user's first active day, and K-factor's 30-day referral sum reads the 29 days before from
-- the table itself. A segment value first seen in the recomputed days also gets its zero rows for
-- the older days, so the table always holds every day for every segment value, as a full build
-- does. Without the window (plain dbt build) every day is recomputed.
{%- set activation_window = var('activation_window_days') %}
{%- set dormant_days = var('reactivation_dormant_days') %}
{%- set roi_window = var('roi_window_days') %}
{%- set daily_fact_columns = [
    'active_users', 'paying_users', 'paid_orders', 'gmv', 'coupon_orders', 'active_sessions',
    'reactivated_users', 'new_users', 'activated_users', 'new_user_window_gmv',
    'referral_invites', 'referral_conversions', 'searching_users', 'carting_users',
] %}
{%- set restated_days = [30, roi_window, activation_window] | max + 1 %}
{%- set window_first_day = load_window_first_day() %}
{%- set recompute_from = none %}
{%- if window_first_day %}
    {%- set recompute_from = "cast('" ~ (modules.datetime.date.fromisoformat(window_first_day)
        - modules.datetime.timedelta(days=restated_days)).isoformat() ~ "' as date)" %}
{%- endif %}
{#- Active days from this far back before recompute_from: a WAU/MAU interval covering it starts
    at most 30 days earlier, and a reactivation's previous active day is found in that range or
    lies before it (then the gap is longer than dormant_days). -#}
{%- set active_lookback_days = [30, dormant_days + 1] | max %}
{%- set incremental_run = is_incremental() and recompute_from is not none %}

{{
    config(
        materialized='incremental' if incremental_deletes_supported() else 'table',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[windowed_delete_hook(
            "delete from {{ this }} where metric_date >= " ~ recompute_from
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

user_day_events as {{ inline_cte() }} (
    select * from {{ ref('int_user_day_events_counted') }}
),

user_layers as {{ inline_cte() }} (
    select * from {{ ref('user_layers') }}
),

layer_dates as (
    select * from {{ ref('int_layer_dates_mapped') }}
),

n_day_retention as (
    select * from {{ ref('n_day_retention_rates') }}
),

marketing_spend as (
    select * from {{ ref('stg_landing__marketing_spend') }}
),

time_spine as (
    select * from {{ ref('time_spine_daily') }}
),

-- A user's static segments as one key (the sorted set of dimension=value): facts and WAU/MAU
-- edges are summed per profile first and expanded to the profile's segments after, instead of
-- repeating every user-day once per static dimension.
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

data_dates as (
    select
        min(activity_date) as first_data_date,
        max(activity_date) as latest_data_date
    from user_days
),

calendar as (
    select
        time_spine.date_day as metric_date,
        data_dates.latest_data_date
    from time_spine
    cross join data_dates
    where time_spine.date_day between data_dates.first_data_date and data_dates.latest_data_date
),

-- Every (user, day) a daily fact is counted on.
user_date_keys as (
    select user_id, activity_date as metric_date from user_days
    {%- if incremental_run %} where activity_date >= {{ recompute_from }}{% endif %}
    union
    select user_id, signup_date as metric_date from users where signup_date is not null
    {%- if incremental_run %} and signup_date >= {{ recompute_from }}{% endif %}
    union
    select user_id, activity_date as metric_date from user_day_events
    {%- if incremental_run %} where activity_date >= {{ recompute_from }}{% endif %}
),

first_active_days as (
    select user_id, min(activity_date) as first_active_date
    from user_days
    where is_active
    group by user_id
),

active_days as (
    select
        user_id,
        activity_date,
        lag(activity_date) over (partition by user_id order by activity_date) as previous_active_date,
        lead(activity_date) over (partition by user_id order by activity_date) as next_active_date
    from user_days
    where is_active
    {%- if incremental_run %}
        and activity_date >= cast({{ dbt.dateadd('day', -active_lookback_days, recompute_from) }} as date)
    {%- endif %}
),

-- WAU/MAU: each active day covers the window days from it up to the user's next active day, so
-- a user's covered intervals never overlap and distinct users = running sum of +1/-1 edges.
-- In a partitioned run the intervals are cut at recompute_from: the edges before it are not
-- needed, and the running sums start there.
window_intervals_uncut as (
    {%- for window_days in [7, 30] %}
    select
        user_id,
        {{ window_days }} as window_days,
        activity_date as start_date,
        case
            when next_active_date is not null
                and next_active_date < cast({{ dbt.dateadd('day', window_days, 'activity_date') }} as date)
                then next_active_date
            else cast({{ dbt.dateadd('day', window_days, 'activity_date') }} as date)
        end as end_date
    from active_days
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

window_intervals as (
    select
        user_id,
        window_days,
        {%- if incremental_run %}
        case
            when start_date < {{ recompute_from }} then {{ recompute_from }} else start_date
        end as start_date,
        {%- else %}
        start_date,
        {%- endif %}
        end_date
    from window_intervals_uncut
    {%- if incremental_run %}
    where end_date > {{ recompute_from }}
    {%- endif %}
),

window_edges as (
    select user_id, start_date as edge_date, window_days, 1 as delta
    from window_intervals

    union all

    select user_id, end_date as edge_date, window_days, -1 as delta
    from window_intervals
),

-- By layer, a user counts in the layer they hold as of the metric day, which changes only where
-- the layer as-of date changes: cut each covered interval at those epochs, so every piece has
-- one layer and its +1/-1 edges fall inside the epoch.
layer_epochs as (
    select
        layer_as_of_date,
        min(date_day) as epoch_start_date,
        max(date_day) as epoch_end_date
    from layer_dates
    group by layer_as_of_date
),

window_pieces as (
    select
        window_intervals.user_id,
        window_intervals.window_days,
        case
            when window_intervals.start_date > layer_epochs.epoch_start_date
                then window_intervals.start_date
            else layer_epochs.epoch_start_date
        end as piece_start_date,
        case
            when window_intervals.end_date <= layer_epochs.epoch_end_date
                then window_intervals.end_date
            else cast({{ dbt.dateadd('day', 1, 'layer_epochs.epoch_end_date') }} as date)
        end as piece_end_date,
        layer_epochs.layer_as_of_date
    from window_intervals
    inner join layer_epochs
        on layer_epochs.epoch_start_date < window_intervals.end_date
        and layer_epochs.epoch_end_date >= window_intervals.start_date
),

-- Users per piece and combination of layers, then once per layer dimension: the pieces are
-- summed before they are unpivoted, so the unpivot reads a few rows per piece boundary.
window_piece_layer_counts as (
    select
        window_pieces.window_days,
        window_pieces.piece_start_date,
        window_pieces.piece_end_date
        {{- layer_columns('user_layers') }},
        count(*) as piece_users
    from window_pieces
    left join user_layers
        on window_pieces.user_id = user_layers.user_id
        and window_pieces.layer_as_of_date = user_layers.as_of_date
    group by
        window_pieces.window_days,
        window_pieces.piece_start_date,
        window_pieces.piece_end_date
        {{- layer_columns('user_layers') }}
),

window_piece_segments as (
    {{ unpivot_layers('window_piece_layer_counts', ['window_days', 'piece_start_date', 'piece_end_date', 'piece_users']) }}
),

profile_window_edges as (
    select
        window_edges.edge_date,
        window_edges.window_days,
        user_segment_profiles.segment_profile,
        sum(window_edges.delta) as delta
    from window_edges
    inner join user_segment_profiles
        on window_edges.user_id = user_segment_profiles.user_id
    group by
        window_edges.edge_date, window_edges.window_days, user_segment_profiles.segment_profile
),

segment_window_edges as (
    select
        profile_window_edges.edge_date,
        profile_window_edges.window_days,
        profile_window_edges.delta,
        profile_segments.segment_dimension,
        profile_segments.segment_value
    from profile_window_edges
    inner join profile_segments
        on profile_window_edges.segment_profile = profile_segments.segment_profile

    union all

    select piece_start_date as edge_date, window_days, piece_users as delta, segment_dimension, segment_value
    from window_piece_segments

    union all

    select piece_end_date as edge_date, window_days, -piece_users as delta, segment_dimension, segment_value
    from window_piece_segments
),

window_deltas as (
    select
        edge_date as metric_date,
        segment_dimension,
        segment_value,
        sum(case when window_days = 7 then delta else 0 end) as wau_delta,
        sum(case when window_days = 30 then delta else 0 end) as mau_delta
    from segment_window_edges
    group by edge_date, segment_dimension, segment_value
),

-- A previous active day not found among active_days (cut in a partitioned run) lies before
-- them, more than dormant_days earlier; without the cut there is none (first activity).
reactivation_days as (
    select
        active_days.user_id,
        active_days.activity_date
    from active_days
    inner join first_active_days
        on active_days.user_id = first_active_days.user_id
    where (
        active_days.previous_active_date is not null
        and {{ days_between('active_days.previous_active_date', 'active_days.activity_date') }}
            > {{ dormant_days }}
    ) or (
        active_days.previous_active_date is null
        and first_active_days.first_active_date < active_days.activity_date
    )
),

-- New users, activation and the GMV they bring within the ROI window.
first_paid_days as (
    select user_id, min(activity_date) as first_paid_date
    from user_days
    where has_paid_order
    group by user_id
),

new_user_gmv as (
    select
        users.user_id,
        sum(user_days.paid_amount) as window_gmv
    from users
    inner join user_days
        on users.user_id = user_days.user_id
        and user_days.activity_date >= users.signup_date
        and user_days.activity_date < cast({{ dbt.dateadd('day', roi_window, 'users.signup_date') }} as date)
    {%- if incremental_run %}
    where users.signup_date >= {{ recompute_from }}
        and user_days.activity_date >= {{ recompute_from }}
    {%- endif %}
    group by users.user_id
),

new_user_outcomes as (
    select
        users.user_id,
        users.signup_date,
        first_paid_days.first_paid_date is not null
            and first_paid_days.first_paid_date >= users.signup_date
            and first_paid_days.first_paid_date
                < cast({{ dbt.dateadd('day', activation_window, 'users.signup_date') }} as date)
            as is_activated,
        coalesce(new_user_gmv.window_gmv, 0) as window_gmv
    from users
    left join first_paid_days
        on users.user_id = first_paid_days.user_id
    left join new_user_gmv
        on users.user_id = new_user_gmv.user_id
    where users.signup_date is not null
    {%- if incremental_run %}
        and users.signup_date >= {{ recompute_from }}
    {%- endif %}
),

-- Every daily fact of a user and day on one row of additive counts, so each user-day is
-- expanded to its segments once: joining each fact table to an expanded (user, day, segment)
-- relation made DuckDB store that relation, about ten rows per user-day.
user_day_facts as {{ inline_cte() }} (
    select
        user_date_keys.user_id,
        user_date_keys.metric_date,
        case when user_days.is_active then 1 else 0 end as active_users,
        case when user_days.has_paid_order then 1 else 0 end as paying_users,
        coalesce(user_days.paid_order_count, 0) as paid_orders,
        coalesce(user_days.paid_amount, 0) as gmv,
        coalesce(user_days.coupon_order_count, 0) as coupon_orders,
        case when user_days.is_active then user_days.session_count else 0 end as active_sessions,
        case when reactivation_days.user_id is not null then 1 else 0 end as reactivated_users,
        case when new_user_outcomes.user_id is not null then 1 else 0 end as new_users,
        case when new_user_outcomes.is_activated then 1 else 0 end as activated_users,
        coalesce(new_user_outcomes.window_gmv, 0) as new_user_window_gmv,
        coalesce(user_day_events.share_count, 0) as referral_invites,
        coalesce(user_day_events.referral_conversion_count, 0) as referral_conversions,
        case when user_day_events.search_count > 0 then 1 else 0 end as searching_users,
        case when user_day_events.add_to_cart_count > 0 then 1 else 0 end as carting_users
    from user_date_keys
    left join user_days
        on user_date_keys.user_id = user_days.user_id
        and user_date_keys.metric_date = user_days.activity_date
    left join reactivation_days
        on user_date_keys.user_id = reactivation_days.user_id
        and user_date_keys.metric_date = reactivation_days.activity_date
    left join new_user_outcomes
        on user_date_keys.user_id = new_user_outcomes.user_id
        and user_date_keys.metric_date = new_user_outcomes.signup_date
    left join user_day_events
        on user_date_keys.user_id = user_day_events.user_id
        and user_date_keys.metric_date = user_day_events.activity_date
),

-- The static segments (overall, acquisition channel, ...) of each user: summed per day and
-- segment profile, then expanded to the profile's segments.
static_profile_days as (
    select
        user_day_facts.metric_date,
        user_segment_profiles.segment_profile,
        {%- for column in daily_fact_columns %}
        sum(user_day_facts.{{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from user_day_facts
    inner join user_segment_profiles
        on user_day_facts.user_id = user_segment_profiles.user_id
    group by user_day_facts.metric_date, user_segment_profiles.segment_profile
),

static_segment_days as (
    select
        static_profile_days.metric_date,
        profile_segments.segment_dimension,
        profile_segments.segment_value,
        {%- for column in daily_fact_columns %}
        sum(static_profile_days.{{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from static_profile_days
    inner join profile_segments
        on static_profile_days.segment_profile = profile_segments.segment_profile
    group by
        static_profile_days.metric_date,
        profile_segments.segment_dimension,
        profile_segments.segment_value
),

-- The layers a user holds as of the day (`unassigned` without one): summed per day and
-- combination of layers first (a few hundred rows a day), then once per layer dimension.
layer_combination_days as (
    select
        user_day_facts.metric_date
        {{- layer_columns('user_layers') }},
        {%- for column in daily_fact_columns %}
        sum(user_day_facts.{{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from user_day_facts
    left join layer_dates
        on user_day_facts.metric_date = layer_dates.date_day
    left join user_layers
        on user_day_facts.user_id = user_layers.user_id
        and layer_dates.layer_as_of_date = user_layers.as_of_date
    group by
        user_day_facts.metric_date
        {{- layer_columns('user_layers') }}
),

layer_combination_segments as (
    {{ unpivot_layers('layer_combination_days', ['metric_date'] + daily_fact_columns) }}
),

layer_segment_days as (
    select
        metric_date,
        segment_dimension,
        segment_value,
        {%- for column in daily_fact_columns %}
        sum({{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from layer_combination_segments
    group by metric_date, segment_dimension, segment_value
),

daily_facts as (
    select * from static_segment_days
    union all
    select * from layer_segment_days
),

-- Spend is known per channel: overall = all channels, other dimensions have none.
daily_spend as (
    select spend_date as metric_date, 'overall' as segment_dimension, 'all' as segment_value,
        sum(spend) as marketing_spend
    from marketing_spend
    group by spend_date

    union all

    select spend_date as metric_date, 'acquisition_channel' as segment_dimension,
        channel as segment_value, sum(spend) as marketing_spend
    from marketing_spend
    group by spend_date, channel
),

computed_segment_values as (
    -- Every value a user holds on a day with a fact, and every value a user holds only inside a
    -- WAU/MAU window (e.g. a layer held between two active days), so windows never lose a user.
    select segment_dimension, segment_value
    from daily_facts

    union

    select segment_dimension, segment_value
    from window_piece_segments
),

{% if incremental_run -%}
-- The rows before recompute_from stay; they hold every segment value seen so far.
stored_segment_values as (
    select distinct segment_dimension, segment_value
    from {{ this }}
),

new_segment_values as (
    select
        computed_segment_values.segment_dimension,
        computed_segment_values.segment_value
    from computed_segment_values
    left join stored_segment_values
        on computed_segment_values.segment_dimension = stored_segment_values.segment_dimension
        and computed_segment_values.segment_value = stored_segment_values.segment_value
    where stored_segment_values.segment_dimension is null
),

segment_values as (
    select segment_dimension, segment_value from computed_segment_values
    union
    select segment_dimension, segment_value from stored_segment_values
),

-- Recomputed days for every value; the older days only for values seen for the first time.
grid as (
    select
        calendar.metric_date,
        calendar.latest_data_date,
        segment_values.segment_dimension,
        segment_values.segment_value,
        cast(null as bigint) as stored_referral_conversions,
        true as is_output
    from calendar
    cross join segment_values
    where calendar.metric_date >= {{ recompute_from }}

    union all

    select
        calendar.metric_date,
        calendar.latest_data_date,
        new_segment_values.segment_dimension,
        new_segment_values.segment_value,
        cast(null as bigint) as stored_referral_conversions,
        true as is_output
    from calendar
    cross join new_segment_values
    where calendar.metric_date < {{ recompute_from }}

    union all

    -- The stored days K-factor's 30-day referral sum reaches back to; not written again.
    select
        stored.metric_date,
        data_dates.latest_data_date,
        stored.segment_dimension,
        stored.segment_value,
        stored.referral_conversions as stored_referral_conversions,
        false as is_output
    from {{ this }} as stored
    cross join data_dates
    where stored.metric_date >= cast({{ dbt.dateadd('day', -29, recompute_from) }} as date)
),
{%- else -%}
grid as (
    select
        calendar.metric_date,
        calendar.latest_data_date,
        computed_segment_values.segment_dimension,
        computed_segment_values.segment_value,
        cast(null as bigint) as stored_referral_conversions,
        true as is_output
    from calendar
    cross join computed_segment_values
),
{%- endif %}

joined as (
    select
        grid.metric_date,
        grid.segment_dimension,
        grid.segment_value,
        grid.latest_data_date,
        grid.is_output,
        coalesce(daily_facts.new_users, 0) as new_users,
        coalesce(daily_facts.activated_users, 0) as activated_users,
        coalesce(daily_facts.new_user_window_gmv, 0) as new_user_window_gmv,
        coalesce(daily_facts.active_users, 0) as dau,
        sum(coalesce(window_deltas.wau_delta, 0)) over (
            partition by grid.segment_dimension, grid.segment_value
            order by grid.metric_date
            rows between unbounded preceding and current row
        ) as wau,
        sum(coalesce(window_deltas.mau_delta, 0)) over (
            partition by grid.segment_dimension, grid.segment_value
            order by grid.metric_date
            rows between unbounded preceding and current row
        ) as mau,
        sum(coalesce(daily_facts.referral_conversions, grid.stored_referral_conversions, 0)) over (
            partition by grid.segment_dimension, grid.segment_value
            order by grid.metric_date
            rows between 29 preceding and current row
        ) as referral_conversions_30d,
        n_day_retention.d1_retention_rate,
        n_day_retention.d7_retention_rate,
        n_day_retention.d30_retention_rate,
        coalesce(daily_facts.reactivated_users, 0) as reactivated_users,
        coalesce(daily_facts.paying_users, 0) as paying_users,
        coalesce(daily_facts.paid_orders, 0) as orders,
        coalesce(daily_facts.gmv, 0) as gmv,
        coalesce(daily_facts.coupon_orders, 0) as coupon_orders,
        coalesce(daily_facts.active_sessions, 0) as active_sessions,
        coalesce(daily_facts.referral_invites, 0) as referral_invites,
        coalesce(daily_facts.referral_conversions, 0) as referral_conversions,
        coalesce(daily_facts.searching_users, 0) as searching_users,
        coalesce(daily_facts.carting_users, 0) as carting_users,
        daily_spend.marketing_spend
    from grid
    left join daily_facts
        on grid.metric_date = daily_facts.metric_date
        and grid.segment_dimension = daily_facts.segment_dimension
        and grid.segment_value = daily_facts.segment_value
    left join window_deltas
        on grid.metric_date = window_deltas.metric_date
        and grid.segment_dimension = window_deltas.segment_dimension
        and grid.segment_value = window_deltas.segment_value
    left join n_day_retention
        on grid.metric_date = n_day_retention.signup_date
        and grid.segment_dimension = n_day_retention.segment_dimension
        and grid.segment_value = n_day_retention.segment_value
    left join daily_spend
        on grid.metric_date = daily_spend.metric_date
        and grid.segment_dimension = daily_spend.segment_dimension
        and grid.segment_value = daily_spend.segment_value
),

final as (
    select
        metric_date,
        segment_dimension,
        segment_value,
        cast(new_users as bigint) as new_users,
        -- Null until the activation window of the day's new users has closed.
        case
            when cast({{ dbt.dateadd('day', activation_window - 1, 'metric_date') }} as date) <= latest_data_date
                then {{ safe_ratio('activated_users', 'new_users') }}
        end as activation_rate,
        cast(dau as bigint) as dau,
        cast(wau as bigint) as wau,
        cast(mau as bigint) as mau,
        {{ safe_ratio('dau', 'mau') }} as stickiness,
        d1_retention_rate,
        d7_retention_rate,
        d30_retention_rate,
        cast(reactivated_users as bigint) as reactivated_users,
        cast(paying_users as bigint) as paying_users,
        {{ safe_ratio('paying_users', 'dau') }} as paying_rate,
        cast(orders as bigint) as orders,
        cast(gmv as double) as gmv,
        {{ safe_ratio('gmv', 'orders') }} as aov,
        {{ safe_ratio('gmv', 'dau') }} as arpu,
        {{ safe_ratio('gmv', 'paying_users') }} as arppu,
        cast(referral_invites as bigint) as referral_invites,
        cast(referral_conversions as bigint) as referral_conversions,
        {{ safe_ratio('referral_conversions_30d', 'mau') }} as k_factor,
        cast(marketing_spend as double) as marketing_spend,
        {{ safe_ratio('marketing_spend', 'new_users') }} as cac,
        case
            when cast({{ dbt.dateadd('day', roi_window - 1, 'metric_date') }} as date) <= latest_data_date
                then {{ safe_ratio('new_user_window_gmv - marketing_spend', 'marketing_spend') }}
        end as roi,
        {{ safe_ratio('searching_users', 'dau') }} as search_rate,
        {{ safe_ratio('carting_users', 'dau') }} as add_to_cart_rate,
        {{ safe_ratio('coupon_orders', 'orders') }} as coupon_order_share,
        {{ safe_ratio('active_sessions', 'dau') }} as sessions_per_active_user,
        -- Counts behind the ratios, for period roll-ups (acquisition_channel_scorecards).
        cast(activated_users as bigint) as activated_users,
        cast(new_user_window_gmv as double) as new_user_window_gmv,
        cast({{ dbt.dateadd('day', activation_window - 1, 'metric_date') }} as date)
            <= latest_data_date as is_activation_window_closed,
        cast({{ dbt.dateadd('day', roi_window - 1, 'metric_date') }} as date)
            <= latest_data_date as is_roi_window_closed
    from joined
    where is_output
)

select * from final
