{#- Dialect differences for value checks and hashing, kept behind adapter.dispatch. -#}

{#- A type of the landing contract (data_type in _landing__sources.yml) in the target's dialect:
    DuckDB takes varchar as is; Spark needs a length for varchar, its text type is `string`. -#}
{% macro sql_type(data_type) %}
    {{- return(adapter.dispatch('sql_type', 'userops')(data_type)) -}}
{% endmacro %}

{% macro default__sql_type(data_type) -%}
    {{- dbt.type_string() if data_type | lower in ['varchar', 'text', 'string'] else data_type -}}
{%- endmacro %}

{% macro duckdb__sql_type(data_type) -%}
    {{- data_type -}}
{%- endmacro %}


{#- A cast that yields null instead of failing. -#}
{% macro safe_cast(expression, data_type) %}
    {{- return(adapter.dispatch('safe_cast', 'userops')(expression, data_type)) -}}
{% endmacro %}

{% macro default__safe_cast(expression, data_type) -%}
    try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}


{#- Text of a value with blanks turned into null. -#}
{% macro clean_text(expression) -%}
    nullif(trim(cast({{ expression }} as {{ dbt.type_string() }})), '')
{%- endmacro %}


{#- True when a value is present but does not cast (unparseable). -#}
{% macro fails_cast(expression, data_type) -%}
    ({{ clean_text(expression) }} is not null and {{ safe_cast(clean_text(expression), data_type) }} is null)
{%- endmacro %}


{% macro is_valid_json(expression) %}
    {{- return(adapter.dispatch('is_valid_json', 'userops')(expression)) -}}
{% endmacro %}

{% macro default__is_valid_json(expression) -%}
    (from_json({{ expression }}, 'map<string,string>') is not null)
{%- endmacro %}

{% macro duckdb__is_valid_json(expression) -%}
    coalesce(json_valid({{ expression }}), false)
{%- endmacro %}


{#- A text field from a JSON object, null when absent. -#}
{% macro json_text(expression, key) %}
    {{- return(adapter.dispatch('json_text', 'userops')(expression, key)) -}}
{% endmacro %}

{% macro default__json_text(expression, key) -%}
    get_json_object({{ expression }}, '$.{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(expression, key) -%}
    json_extract_string({{ expression }}, '$.{{ key }}')
{%- endmacro %}


{#- One-way hash of PII (normalised so the same email always hashes alike). -#}
{% macro hash_pii(expression) %}
    {{- return(adapter.dispatch('hash_pii', 'userops')(expression)) -}}
{% endmacro %}

{% macro default__hash_pii(expression) -%}
    sha2(lower(trim({{ expression }})), 256)
{%- endmacro %}

{% macro duckdb__hash_pii(expression) -%}
    sha256(lower(trim({{ expression }})))
{%- endmacro %}


{#- The whole raw row as JSON text, kept in quarantine so an operator sees what arrived. -#}
{% macro row_as_json(relation_alias) %}
    {{- return(adapter.dispatch('row_as_json', 'userops')(relation_alias)) -}}
{% endmacro %}

{% macro default__row_as_json(relation_alias) -%}
    {#- Spark drops null fields from JSON unless told not to; a quarantined row keeps them all. -#}
    to_json(struct({{ relation_alias }}.*), map('ignoreNullFields', 'false'))
{%- endmacro %}

{% macro duckdb__row_as_json(relation_alias) -%}
    cast(to_json({{ relation_alias }}) as varchar)
{%- endmacro %}


{#- The distinct texts of a group, sorted and joined: equal sets give equal text. -#}
{% macro sorted_text_agg(expression, delimiter) %}
    {{- return(adapter.dispatch('sorted_text_agg', 'userops')(expression, delimiter)) -}}
{% endmacro %}

{% macro default__sorted_text_agg(expression, delimiter) -%}
    array_join(array_sort(collect_set({{ expression }})), {{ delimiter }})
{%- endmacro %}

{% macro duckdb__sorted_text_agg(expression, delimiter) -%}
    string_agg(distinct {{ expression }}, {{ delimiter }} order by {{ expression }})
{%- endmacro %}


{#- A value (a path, most often) as one SQL string literal, whatever quotes it holds: the Jinja
    twin of userops/sql.py's sql_string_literal. DuckDB and standard SQL double the quote; Spark
    reads a backslash as an escape and would join 'a''b' into "ab", so it escapes both. -#}
{% macro sql_string_literal(value) %}
    {{- return(adapter.dispatch('sql_string_literal', 'userops')(value)) -}}
{% endmacro %}

{% macro default__sql_string_literal(value) -%}
    {{- "'" ~ (value | string | replace("'", "''")) ~ "'" -}}
{%- endmacro %}

{% macro spark__sql_string_literal(value) -%}
    {{- "'" ~ (value | string | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'" -}}
{%- endmacro %}
