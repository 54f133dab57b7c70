// A metadata.managedFields entry as kube-apiserver writes one: for decode.test.ts and decode-micro.ts.
export const managedFieldsEntry = (manager: string, fields: object, subresource?: string) => ({
  manager,
  operation: 'Update',
  apiVersion: 'v1',
  time: '2026-11-30T21:17:10Z',
  fieldsType: 'FieldsV1',
  fieldsV1: fields,
  ...(subresource ? { subresource } : {}),
});
