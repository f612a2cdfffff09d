{#-
    The quarantine gate (docs/landing_contract.md, "When too much is quarantined"): landing tables
    whose rows were quarantined above share_of_limit x their data-quality limit (below 1: and
    not above the limit itself), one row per table with a message that names the table, the
    share, the top reason, an example row and the vars to change. Two limits apply to each
    table with raw rows:
    - the share of its raw rows quarantined for one reason, against the dq_max_* var that
      var dq_reason_max_share_vars names for that reason;
    - the share quarantined for any reason, against var dq_max_quarantined_share.
    Read by the generic test quarantine_share_within_dq_max (tests/generic/).
-#}
{% macro quarantine_over_limits_sql(accounting, quarantined, share_of_limit=1) %}
    {%- set reason_vars = var('dq_reason_max_share_vars') -%}
    {%- set total_var = 'dq_max_quarantined_share' -%}
    {%- set hints = {
        'missing_key': 'missing_key: a required id is null or blank; check how the file or the import mapping fills the id columns',
        'missing_value': 'missing_value: a required column is null; check the import mapping',
        'unparseable_value': 'unparseable_value: values do not cast to their type; check the column types and the timestamp format',
        'invalid_value': 'invalid_value: values outside their accepted set (e.g. order status); check the mapping rules',
        'bad_timestamp': 'bad_timestamp: timestamps before var min_valid_timestamp (' ~ var('min_valid_timestamp') ~ ') or more than var max_future_days (' ~ var('max_future_days') ~ ') days after the build; older history needs a lower min_valid_timestamp, shifted clocks a time zone fix',
        'negative_amount': 'negative_amount: negative amounts or prices, or quantities <= 0; check the sign rules of the mapping',
        'unknown_user': 'unknown_user: rows of users the warehouse does not know; load their users, orders or events too',
        'duplicate': 'duplicate: the same key arrived more than once (a day delivered twice?); delete the copied files',
    } -%}
    {%- set threshold_vars = (reason_vars.values() | unique | sort) + [total_var] -%}
    {%- set limit_text = ('' if share_of_limit == 1 else (share_of_limit ~ ' x ')) -%}
with

accounting as (
    select * from {{ accounting }}
),

quarantined as (
    select * from {{ quarantined }}
),

limits as (
    {% for reason, var_name in reason_vars.items() %}
    select
        '{{ reason }}' as quarantine_reason,
        '{{ var_name }}' as threshold_var,
        cast({{ var(var_name) }} as double) as max_share
    union all
    {% endfor %}
    select
        'all reasons' as quarantine_reason,
        '{{ total_var }}' as threshold_var,
        cast({{ var(total_var) }} as double) as max_share
),

hints as (
    {% for reason, hint in hints.items() %}
    select
        '{{ reason }}' as quarantine_reason,
        '{{ hint }}' as hint
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

reason_counts as (
    select
        table_name,
        quarantine_reason,
        count(*) as reason_rows
    from quarantined
    group by table_name, quarantine_reason
),

top_reasons as (
    select
        table_name,
        quarantine_reason as top_reason,
        reason_rows as top_reason_rows,
        row_number() over (
            partition by table_name order by reason_rows desc, quarantine_reason
        ) as reason_rank
    from reason_counts
),

shares as (
    -- One reason's rows, against that reason's limit (a reason without one: the total's).
    select
        accounting.table_name,
        reason_counts.quarantine_reason as breached_rule,
        reason_counts.quarantine_reason as example_reason,
        cast(reason_counts.reason_rows as double) / accounting.raw_rows as share,
        coalesce(reason_limits.threshold_var, total_limit.threshold_var) as threshold_var,
        coalesce(reason_limits.max_share, total_limit.max_share) as max_share
    from accounting
    inner join reason_counts
        on accounting.table_name = reason_counts.table_name
    left join limits as reason_limits
        on reason_counts.quarantine_reason = reason_limits.quarantine_reason
    cross join limits as total_limit
    where accounting.raw_rows > 0
        and total_limit.quarantine_reason = 'all reasons'

    union all

    -- Every reason together, against dq_max_quarantined_share.
    select
        accounting.table_name,
        'all reasons' as breached_rule,
        top_reasons.top_reason as example_reason,
        cast(accounting.quarantined_rows as double) / accounting.raw_rows as share,
        limits.threshold_var,
        limits.max_share
    from accounting
    inner join top_reasons
        on accounting.table_name = top_reasons.table_name
        and top_reasons.reason_rank = 1
    cross join limits
    where accounting.raw_rows > 0
        and limits.quarantine_reason = 'all reasons'
),

breaches as (
    select
        *,
        -- The message names the reason furthest above its limit (a reason says more about
        -- what to fix than the total does), else the total.
        row_number() over (
            partition by table_name
            order by
                case when breached_rule = 'all reasons' then 1 else 0 end,
                share - max_share desc,
                breached_rule
        ) as breach_rank
    from shares
    where share > {{ share_of_limit }} * max_share
    {%- if share_of_limit != 1 %}
        -- The warning level: approaching a limit, not above it (that is the error's row).
        and share <= max_share
    {%- endif %}
),

breached_vars as (
    -- Every limit a table is above (or approaching), in a fixed order: raising only the one
    -- the message leads with would fail on the next.
    select
        table_name,
        {%- for var_name in threshold_vars %}
        max(case when threshold_var = '{{ var_name }}' then '{{ var_name }}, ' else '' end)
        {%- if not loop.last %} ||{% endif %}
        {%- endfor %} as threshold_vars_text
    from breaches
    group by table_name
),

examples as (
    select
        table_name,
        quarantine_reason,
        record_key,
        source_file,
        raw_record,
        row_number() over (
            partition by table_name, quarantine_reason order by source_file, record_key
        ) as example_rank
    from quarantined
),

joined as (
    select
        accounting.table_name,
        accounting.raw_rows,
        accounting.quarantined_rows,
        cast(accounting.quarantined_rows as double) / accounting.raw_rows as quarantined_share,
        top_reasons.top_reason,
        cast(top_reasons.top_reason_rows as double) / accounting.raw_rows as top_reason_share,
        breaches.breached_rule,
        breaches.share as breached_share,
        breaches.threshold_var,
        breaches.max_share,
        examples.record_key as example_record_key,
        examples.source_file as example_source_file,
        substring(examples.raw_record, 1, 500) as example_raw_record,
        coalesce(hints.hint, breaches.example_reason) as hint,
        substring(
            breached_vars.threshold_vars_text, 1, length(breached_vars.threshold_vars_text) - 2
        ) as threshold_vars
    from breaches
    inner join accounting
        on breaches.table_name = accounting.table_name
    inner join breached_vars
        on breaches.table_name = breached_vars.table_name
    inner join top_reasons
        on breaches.table_name = top_reasons.table_name
        and top_reasons.reason_rank = 1
    left join examples
        on breaches.table_name = examples.table_name
        and breaches.example_reason = examples.quarantine_reason
        and examples.example_rank = 1
    left join hints
        on breaches.example_reason = hints.quarantine_reason
    where breaches.breach_rank = 1
),

final as (
    select
        table_name,
        raw_rows,
        quarantined_rows,
        quarantined_share,
        top_reason,
        top_reason_share,
        breached_rule,
        breached_share,
        threshold_var,
        max_share,
        threshold_vars,
        example_record_key,
        example_source_file,
        example_raw_record,
        table_name || ': ' || {{ percent_text('quarantined_share') }} || ' of '
        || cast(raw_rows as {{ dbt.type_string() }}) || ' raw rows quarantined (top reason '
        || top_reason || ' ' || {{ percent_text('top_reason_share') }} || '); '
        || breached_rule || ' ' || {{ percent_text('breached_share') }} || ' is above '
        || '{{ limit_text }}' || 'var ' || threshold_var || ' = '
        || cast(max_share as {{ dbt.type_string() }}) || ' (' || {{ percent_text('max_share') }}
        || '). Example: row '
        || coalesce(example_record_key, '(no key)') || ' of ' || coalesce(example_source_file, '(no file)')
        || ' (marts.quarantined_rows). ' || hint
        || '. If the share is expected, raise var ' || threshold_vars
        || ' (dbt_project.yml or --vars).' as failure_message
    from joined
)

select * from final
{% endmacro %}


{#- A share as text with one decimal and a percent sign, e.g. 14.3 %. -#}
{% macro percent_text(share_column) -%}
    cast(round(100 * {{ share_column }}, 1) as {{ dbt.type_string() }}) || ' %'
{%- endmacro %}
