/**
 * The one table of SQLSTATE codes portcullis emits (SPEC §6). A code outside this table
 * cannot be constructed, so no module invents a catch-all.
 */
export const SqlState = {
  successful_completion: '00000',
  warning: '01000',
  invalid_transaction_state: '25000',
  in_failed_sql_transaction: '25P02',
  active_sql_transaction: '25001',
  no_active_sql_transaction: '25P01',
  syntax_error: '42601',
  insufficient_privilege: '42501',
  undefined_object: '42704',
  undefined_parameter: '42P02',
  undefined_function: '42883',
  duplicate_object: '42710',
  dependent_objects_still_exist: '2BP01',
  invalid_grant_operation: '0LP01',
  invalid_parameter_value: '22023',
  invalid_datetime_format: '22007',
  datetime_field_overflow: '22008',
  invalid_text_representation: '22P02',
  numeric_value_out_of_range: '22003',
  invalid_password: '28P01',
  invalid_authorization_specification: '28000',
  invalid_catalog_name: '3D000',
  feature_not_supported: '0A000',
  protocol_violation: '08P01',
  too_many_connections: '53300',
  disk_full: '53100',
  io_error: '58030',
  query_canceled: '57014',
  object_in_use: '55006',
  cant_change_runtime_param: '55P02',
  invalid_sql_statement_name: '26000',
  invalid_cursor_name: '34000',
  duplicate_prepared_statement: '42P05',
  duplicate_cursor: '42P03',
  serialization_failure: '40001',
  reserved_name: '42939',
  name_too_long: '42622',
  warning_no_active_transaction: '25P01',
  internal_error: 'XX000',
  admin_shutdown: '57P01',
} as const;

export type SqlStateName = keyof typeof SqlState;
export type SqlStateCode = (typeof SqlState)[SqlStateName];
