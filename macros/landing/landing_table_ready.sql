{#-
    Decides, when a model runs, how a landing table is read:
    - true: files exist and every file has the table's required columns;
    - false: the table's folder is absent or empty and the table is optional, so staging reads an
      empty table of the same shape (orders-only data sets still build);
    - a compiler error naming the file and the column when a required column is missing, and
      naming the glob when the mandatory `orders` table has no files.
    At parse time it returns true so dbt records the dependency on the source.
-#}
{% macro landing_table_ready(table_name) %}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set pattern = landing_glob(table_name) -%}
    {%- set files = landing_files(table_name) -%}
    {%- if files | length == 0 -%}
        {%- if table_name in var('mandatory_landing_tables', ['orders']) -%}
            {{ exceptions.raise_compiler_error(
                "Landing table '" ~ table_name ~ "' is mandatory but no file matches " ~ pattern
                ~ ". Generate sample data (userops generate) or import your own (userops import).") }}
        {%- endif -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set file_problems = landing_csv_problems(pattern) -%}
    {%- if file_problems -%}
        {{ exceptions.raise_compiler_error(
            "Landing table '" ~ table_name ~ "' breaks the raw-data contract (docs/landing_contract.md): "
            ~ (file_problems[:10] | join('; ')) ~ ('; …' if file_problems | length > 10 else '')) }}
    {%- endif -%}
    {%- set required = landing_required_columns(table_name) -%}
    {%- set problems = [] -%}
    {%- set missing = landing_missing_columns(table_name, pattern, files, required) -%}
    {%- set missing_by_file = {} -%}
    {%- for file, column in missing -%}
        {%- do missing_by_file.setdefault(file, []).append(column) -%}
    {%- endfor -%}
    {%- for file, columns in missing_by_file.items() -%}
        {%- if var('landing_format', 'parquet') == 'csv' and columns | length == required | length -%}
            {#- A CSV file with none of the required columns: DuckDB's sniffer found no header
                row (columns column0, column1, ... or one column named after the whole first
                line; left alone it would even skip the rows before the bad one), because a row
                has more or fewer fields than the header; or it is not a file of this table.
                One line instead of one per column; userops build names the line
                (userops/landing_csv.py). -#}
            {%- do problems.append(
                "file " ~ file ~ " has none of the required columns (" ~ (required | join(', '))
                ~ "): DuckDB found no header row in it, because a row has more or fewer fields than"
                ~ " the header (a delimiter in an unquoted value?), or it is another table's file;"
                ~ " userops build names the line") -%}
        {%- else -%}
            {%- for column in columns -%}
                {%- do problems.append("file " ~ file ~ " has no required column '" ~ column ~ "'") -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do problems.extend(landing_type_problems(table_name, pattern)) -%}
    {%- if problems -%}
        {{ exceptions.raise_compiler_error(
            "Landing table '" ~ table_name ~ "' breaks the raw-data contract (docs/landing_contract.md): "
            ~ (problems[:10] | join('; ')) ~ ('; …' if problems | length > 10 else '')) }}
    {%- endif -%}
    {%- do register_landing_source(table_name) -%}
    {{ return(true) }}
{% endmacro %}


{#- The landing folder and globs are plain paths: SQL gets them through sql_string_literal. -#}
{% macro landing_dir() %}
    {{- return(env_var('USEROPS_LANDING_DIR', 'data/landing')) -}}
{% endmacro %}


{% macro landing_glob(table_name) %}
    {{- return(landing_dir() ~ '/' ~ table_name ~ '/*/*.' ~ var('landing_format', 'parquet')) -}}
{% endmacro %}


{#- The files of a landing table (the glob above), sorted. Dialect-specific: DuckDB globs, Spark
    lists with the binaryFile source (macros/spark/landing.sql). -#}
{% macro landing_files(table_name) %}
    {{- return(adapter.dispatch('landing_files', 'userops')(table_name)) -}}
{% endmacro %}

{% macro duckdb__landing_files(table_name) %}
    {{- return(run_query("select file from glob(" ~ sql_string_literal(landing_glob(table_name)) ~ ") order by file").columns[0].values()) -}}
{% endmacro %}

{% macro default__landing_files(table_name) %}
    {{- exceptions.raise_compiler_error(
        "Reading landing files is implemented for duckdb and spark only: add "
        ~ adapter.type() ~ "__landing_files, " ~ adapter.type() ~ "__landing_file_columns and "
        ~ adapter.type() ~ "__register_landing_source (see macros/spark/landing.sql).") -}}
{% endmacro %}


{#- Makes source('landing', table_name) readable on engines that cannot read files through the
    source's external_location (a dbt-duckdb feature): DuckDB needs nothing. -#}
{% macro register_landing_source(table_name) %}
    {{- return(adapter.dispatch('register_landing_source', 'userops')(table_name)) -}}
{% endmacro %}

{% macro default__register_landing_source(table_name) %}
{% endmacro %}


{#- Source columns declared in _landing__sources.yml: the one place the contract lives. -#}
{% macro landing_columns(table_name) %}
    {%- for node in graph.sources.values()
        if node.source_name == 'landing' and node.name == table_name -%}
        {{ return(node.columns) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("No landing source named '" ~ table_name ~ "'") }}
{% endmacro %}


{#- A landing column's meta (`config: {meta: ...}`, or the older top-level `meta:`). -#}
{% macro landing_column_meta(column) %}
    {%- if column.config is defined and column.config.meta -%}
        {{- return(column.config.meta) -}}
    {%- endif -%}
    {{- return(column.meta if column.meta is defined and column.meta else {}) -}}
{% endmacro %}


{% macro landing_required_columns(table_name) %}
    {%- set required = [] -%}
    {%- for name, column in landing_columns(table_name).items() -%}
        {%- if landing_column_meta(column).get('required') -%}
            {%- do required.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(required) }}
{% endmacro %}


{#- True for a column marked `meta: {pii: true}` in _landing__sources.yml: the one place that
    says which raw columns are personal data. -#}
{% macro landing_column_is_pii(column) %}
    {{- return(landing_column_meta(column).get('pii', false) is sameas true) -}}
{% endmacro %}


{#- How a landing column enters SQL. A PII column is read as `<name>_hash`, the SHA-256 of its
    trimmed, lower-cased text (hash_pii; null when blank): the clear value is never selected
    from the files, so no model, raw_record JSON, served table or Parquet file can carry it.
    `expression` is the column as read, or null for an optional column no file has. -#}
{% macro landing_column_select(name, column, expression) %}
    {%- if landing_column_is_pii(column) -%}
        {%- if expression is none -%}
            {{- return('cast(null as ' ~ dbt.type_string() ~ ') as ' ~ name ~ '_hash') -}}
        {%- endif -%}
        {{- return(hash_pii(clean_text(expression)) ~ ' as ' ~ name ~ '_hash') -}}
    {%- endif -%}
    {%- if expression is none -%}
        {{- return('cast(null as ' ~ sql_type(column.data_type) ~ ') as ' ~ name) -}}
    {%- endif -%}
    {{- return(expression) -}}
{% endmacro %}


{#- (file, column) for each required column a file lacks. Reads every file's columns; Spark
    narrows the files down first (macros/spark/landing.sql). -#}
{% macro landing_missing_columns(table_name, pattern, files, required) %}
    {{- return(adapter.dispatch('landing_missing_columns', 'userops')(table_name, pattern, files, required)) -}}
{% endmacro %}

{% macro default__landing_missing_columns(table_name, pattern, files, required) %}
    {%- set missing = [] -%}
    {%- for file, columns in landing_file_columns(pattern, files).items() -%}
        {%- for column in required if column not in columns -%}
            {%- do missing.append((file, column)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(missing) -}}
{% endmacro %}


{#-
    CSV files DuckDB would read misleadingly, as "file F: empty file (0 bytes)" or "file F: not
    UTF-8": a zero-byte file reads as one column `column0` (so it failed as one missing every
    required column), and for a byte that is not UTF-8 DuckDB prints another row than the one
    holding it. Content is read (0.8 s for 183 MB) for files up to var csv_utf8_check_max_bytes;
    larger ones get DuckDB's own message. `userops build` also names the line and guesses the
    encoding (userops/landing_csv.py). Parquet, Spark: nothing to check.
-#}
{% macro landing_csv_problems(pattern) %}
    {{- return(adapter.dispatch('landing_csv_problems', 'userops')(pattern)) -}}
{% endmacro %}

{% macro default__landing_csv_problems(pattern) %}
    {{- return([]) -}}
{% endmacro %}

{% macro duckdb__landing_csv_problems(pattern) %}
    {%- if var('landing_format', 'parquet') != 'csv' -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set problems = [] -%}
    {#- read_blob reads no content when only the size is selected. -#}
    {%- set sizes = run_query(
        "select filename, size from read_blob(" ~ sql_string_literal(pattern) ~ ") order by 1").rows -%}
    {%- set checked = [] -%}
    {%- for file, size in sizes -%}
        {%- if size == 0 -%}
            {%- do problems.append("file " ~ file ~ ": empty file (0 bytes): deliver it again or delete it") -%}
        {%- elif size <= var('csv_utf8_check_max_bytes') -%}
            {%- do checked.append(sql_string_literal(file)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if checked -%}
        {%- set not_utf8 = run_query(
            "select filename from read_blob([" ~ (checked | join(', '))
            ~ "]) where try(decode(content)) is null order by 1").columns[0].values() -%}
        {%- for file in not_utf8 -%}
            {%- do problems.append(
                "file " ~ file ~ ": not UTF-8 (another encoding, e.g. GBK): convert it to UTF-8"
                ~ " (iconv -f GBK -t UTF-8); userops build names the line") -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(problems) -}}
{% endmacro %}


{#- Column names per file, lower-cased. Parquet: one metadata query for all files; CSV: the
    header of each file. A file DuckDB cannot read fails here with its own message, which names
    the file (CSV faults DuckDB reports misleadingly are checked before: landing_csv_problems). -#}
{% macro landing_file_columns(pattern, files) %}
    {{- return(adapter.dispatch('landing_file_columns', 'userops')(pattern, files)) -}}
{% endmacro %}

{% macro duckdb__landing_file_columns(pattern, files) %}
    {%- set by_file = {} -%}
    {%- if var('landing_format', 'parquet') == 'parquet' -%}
        {%- set result = run_query(
            "select file_name, lower(name) from parquet_schema(" ~ sql_string_literal(pattern)
            ~ ") where num_children is null") -%}
        {%- for row in result.rows -%}
            {%- do by_file.setdefault(row[0], []).append(row[1]) -%}
        {%- endfor -%}
    {%- else -%}
        {%- for file in files -%}
            {%- set result = run_query(
                "select lower(column_name) from (describe select * from read_csv(" ~ sql_string_literal(file) ~ "))") -%}
            {%- do by_file.update({file: result.columns[0].values() | list}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(by_file) }}
{% endmacro %}


{#- The select list a base model reads a landing table with: every declared column, null of
    the declared type for an optional column no file has (union_by_name only fills columns that
    some file carries), and a PII column as its hash (landing_column_select). -#}
{% macro landing_projection(table_name) %}
    {%- if not execute -%}
        {{ return('*') }}
    {%- endif -%}
    {%- set pattern = landing_glob(table_name) -%}
    {%- set files = landing_files(table_name) -%}
    {%- set present = [] -%}
    {%- for columns in landing_file_columns(pattern, files).values() -%}
        {%- do present.extend(columns) -%}
    {%- endfor -%}
    {%- set projection = [] -%}
    {%- for name, column in landing_columns(table_name).items() -%}
        {%- do projection.append(landing_column_select(name, column, name if name in present else none)) -%}
    {%- endfor -%}
    {%- do projection.append('filename') -%}
    {{ return(projection | join(', ')) }}
{% endmacro %}


{#- The empty table an absent optional landing table is read as: same columns and types as
    landing_projection gives. -#}
{% macro empty_landing_table(table_name) %}
    select
    {%- for name, column in landing_columns(table_name).items() %}
        {{ landing_column_select(name, column, none) }},
    {%- endfor %}
        cast(null as {{ dbt.type_string() }}) as filename
    where 1 = 0
{% endmacro %}
