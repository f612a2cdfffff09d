{#-
    The last steps of a base_landing__ model, after its `checked` CTE (typed columns,
    check_reason, source_file and raw_source, the raw row as a struct): the final quarantine
    reason and, for quarantined rows only, the raw row as JSON.
    `source`, `checked` and `flagged` are read several times and are declared with
    inline_cte(): a stored copy of every raw row costs far more (spill to disk) than reading the
    files again.

    Why not one window over every row: ranking rows by key needs a sort of the whole table with
    every column as payload, and serialising every row to JSON costs more than reading the files
    (10 M events: 76 s of to_json for 9,693 quarantined rows). Only rows whose key occurs more
    than once can be duplicates, so they alone are ranked (quarantine_duplicates, same rule), and
    JSON is built for the rows that end up quarantined.
    `columns`: the model's output columns, in order, without quarantine_reason and raw_record.
    `history`: on an incremental run, the model's own table holding the rows of earlier files
    (the run's files were deleted from it by the pre-hook). A valid row whose key is already
    there valid is a duplicate: earlier files always win, and those files come first in the
    file order quarantine_duplicates ranks by.
    `final_name`: the name of the last CTE, for a model that adds columns after it.
-#}
{% macro quarantine_ranked_ctes(key_columns, order_by, columns, history=none, final_name='final') -%}
{%- if history is not none %}
history_keys as (
    select distinct
        {%- for key in key_columns %}
        loaded.{{ key }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ history }} as loaded
    inner join checked
        on
        {%- for key in key_columns %}
            {% if not loop.first %}and {% endif %}loaded.{{ key }} = checked.{{ key }}
        {%- endfor %}
    where loaded.quarantine_reason is null
),

{% endif -%}
repeated_keys as (
    select {{ key_columns | join(', ') }}
    from checked
    group by {{ key_columns | join(', ') }}
    having count(*) > 1
),

flagged as {{ inline_cte() }} (
    select
        checked.*,
        repeated_keys.{{ key_columns[0] }} is not null as is_key_repeated,
        {% if history is not none -%}
        history_keys.{{ key_columns[0] }} is not null
        {%- else -%}
        false
        {%- endif %} as is_key_loaded
    from checked
    left join repeated_keys
        on
        {%- for key in key_columns %}
            {% if not loop.first %}and {% endif %}checked.{{ key }} = repeated_keys.{{ key }}
        {%- endfor %}
    {%- if history is not none %}
    left join history_keys
        on
        {%- for key in key_columns %}
            {% if not loop.first %}and {% endif %}checked.{{ key }} = history_keys.{{ key }}
        {%- endfor %}
    {%- endif %}
),

ranked as (
    select
        {{ columns | join(',\n        ') }},
        raw_source,
        case
            when check_reason is null and is_key_loaded then 'duplicate'
            else {{ quarantine_duplicates(key_columns, order_by) }}
        end as quarantine_reason
    from flagged
    where is_key_repeated
),

unique_keys as (
    select
        {{ columns | join(',\n        ') }},
        raw_source,
        case
            when check_reason is null and is_key_loaded then 'duplicate'
            else check_reason
        end as quarantine_reason
    from flagged
    where not is_key_repeated
),

combined as (
    select * from unique_keys
    union all
    select * from ranked
),

{{ final_name }} as (
    select
        {{ columns | join(',\n        ') }},
        quarantine_reason,
        case
            when quarantine_reason is not null then {{ struct_as_json('raw_source') }}
        end as raw_record
    from combined
)
{%- endmacro %}


{#- The current row of a relation as one struct value (read into JSON only when needed). -#}
{% macro row_as_struct(relation_alias) %}
    {{- return(adapter.dispatch('row_as_struct', 'userops')(relation_alias)) -}}
{% endmacro %}

{% macro default__row_as_struct(relation_alias) -%}
    struct({{ relation_alias }}.*)
{%- endmacro %}

{% macro duckdb__row_as_struct(relation_alias) -%}
    {{ relation_alias }}
{%- endmacro %}


{% macro struct_as_json(expression) %}
    {{- return(adapter.dispatch('struct_as_json', 'userops')(expression)) -}}
{% endmacro %}

{% macro default__struct_as_json(expression) -%}
    {#- Spark drops null fields from JSON unless told not to; a quarantined row keeps them all. -#}
    to_json({{ expression }}, map('ignoreNullFields', 'false'))
{%- endmacro %}

{% macro duckdb__struct_as_json(expression) -%}
    cast(to_json({{ expression }}) as varchar)
{%- endmacro %}
