{#-
    Landing tables with too much of their input quarantined (macros/landing/quarantine_gate.sql):
    one failing row per table above its limit (warning_level: above var dq_warn_share_of_max x
    its limit), with failure_message. dbt itself prints only the count of failing rows, so the
    messages are also logged when the test runs: every caller (userops build, plain dbt build,
    the Dagster step log) shows what to change.
-#}
{% test quarantine_share_within_dq_max(model, quarantined, warning_level=false) %}
    {%- set share_of_limit = var('dq_warn_share_of_max') if warning_level else 1 -%}
    {%- set query = quarantine_over_limits_sql(model, quarantined, share_of_limit) -%}
    {%- if execute and load_relation(model) is not none and load_relation(quarantined) is not none -%}
        {%- for message in run_query(query).columns['failure_message'].values() -%}
            {{- log('Quarantine gate (' ~ ('warning' if warning_level else 'error') ~ '): ' ~ message, info=true) -}}
        {%- endfor -%}
    {%- endif -%}
    {{ query }}
{% endtest %}
