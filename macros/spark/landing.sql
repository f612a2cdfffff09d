{#-
    Landing files on Spark. dbt-spark ignores the sources' external_location (a dbt-duckdb
    feature) and Spark SQL has no glob() or parquet_schema(), so:
    - spark__landing_files lists files with the binaryFile source (file metadata only; content
      is never read);
    - spark__landing_file_columns gives the columns of all files merged (Spark's mergeSchema,
      DuckDB's union_by_name), which is what the select list needs;
    - spark__landing_missing_columns finds the files lacking a required column: a file can only
      lack one where the merged read has no value in it, so one scan of the required columns
      picks the candidates and only their own schemas are read;
    - spark__register_landing_source makes source('landing', <table>) a view over the files
      with `filename`, the file path (DuckDB's filename = true).
    Paths use DuckDB's glob, <landing>/<table>/*/*.parquet, which Spark expands the same way.
    Only parquet is supported on Spark (var landing_format).
-#}

{% macro spark_landing_format() %}
    {%- set landing_format = var('landing_format', 'parquet') -%}
    {%- if landing_format != 'parquet' -%}
        {{- exceptions.raise_compiler_error(
            "var landing_format '" ~ landing_format ~ "' is not supported on Spark: land parquet "
            ~ "(userops import writes parquet) or build on DuckDB.") -}}
    {%- endif -%}
    {{- return(landing_format) -}}
{% endmacro %}


{#- A Spark file URI as the plain path DuckDB reports for a local file (file:/x -> /x); other
    schemes (s3a://, hdfs://) are kept. -#}
{% macro spark_local_path(uri_expression) -%}
    regexp_replace({{ uri_expression }}, '^file:(//)?', '')
{%- endmacro %}


{% macro spark__landing_files(table_name) %}
    {%- set landing_format = spark_landing_format() -%}
    {#- A temporary view: session-scoped, so it never lands in the metastore. -#}
    {%- do run_query(
        "create or replace temporary view userops_landing_files using binaryFile options (path "
        ~ sql_string_literal(landing_dir()) ~ ", recursiveFileLookup 'true', pathGlobFilter '*." ~ landing_format ~ "')") -%}
    {#- Files two levels below the table folder, like DuckDB's <table>/*/*.parquet glob. -#}
    {%- set files = run_query(
        "select " ~ spark_local_path('path') ~ " as file from userops_landing_files"
        ~ " where path rlike '/" ~ table_name ~ "/[^/]+/[^/]+[.]" ~ landing_format ~ "$'"
        ~ " order by file") -%}
    {{- return(files.columns[0].values()) -}}
{% endmacro %}


{#- All files of a landing glob read as one relation, their schemas merged. -#}
{% macro spark_landing_read(pattern) -%}
    parquet.`{{ pattern }}` with ('mergeSchema' = 'true')
{%- endmacro %}


{% macro spark__landing_file_columns(pattern, files) %}
    {%- set result = run_query("describe query select * from " ~ spark_landing_read(pattern)) -%}
    {{ return({pattern: result.columns[0].values() | map('lower') | list}) }}
{% endmacro %}


{% macro spark__landing_missing_columns(table_name, pattern, files, required) %}
    {%- set merged = spark__landing_file_columns(pattern, files)[pattern] -%}
    {%- set missing = [] -%}
    {#- A column no file has. -#}
    {%- for column in required if column not in merged -%}
        {%- for file in files -%}
            {%- do missing.append((file, column)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set present = required | select('in', merged) | list -%}
    {%- if not present -%}
        {{ return(missing) }}
    {%- endif -%}
    {#- A column some files have: only a file without a single value of it can lack it. -#}
    {%- set conditions = [] -%}
    {%- for column in present -%}
        {%- do conditions.append('count(' ~ column ~ ') = 0') -%}
    {%- endfor -%}
    {%- set candidates = run_query(
        "select " ~ spark_local_path('_metadata.file_path') ~ " as file from " ~ spark_landing_read(pattern)
        ~ " group by 1 having " ~ conditions | join(' or ') ~ " order by 1").columns[0].values() -%}
    {%- for file in candidates -%}
        {%- set columns = run_query("describe query select * from parquet.`" ~ file ~ "`").columns[0].values() | map('lower') | list -%}
        {%- for column in present if column not in columns -%}
            {%- do missing.append((file, column)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(missing) }}
{% endmacro %}


{% macro spark__register_landing_source(table_name) %}
    {%- set relation = source('landing', table_name) -%}
    {%- do run_query("create schema if not exists " ~ relation.schema) -%}
    {%- do run_query(
        "create or replace view " ~ relation ~ " as select *, "
        ~ spark_local_path('_metadata.file_path') ~ " as filename"
        ~ " from " ~ spark_landing_read(landing_glob(table_name))) -%}
{% endmacro %}
