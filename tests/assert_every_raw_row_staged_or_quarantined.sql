-- Quarantine accounting: for every landing table, raw rows = staged rows + quarantined rows.
-- Raw rows are counted from the files themselves in landing_row_accounting.
select *
from {{ ref('landing_row_accounting') }}
where raw_rows != staged_rows + quarantined_rows
