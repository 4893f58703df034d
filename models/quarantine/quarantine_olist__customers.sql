{{ config(alias='customers') }}

{{ quarantined_rows(ref('base_olist__customers')) }}
