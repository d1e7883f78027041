import type { Translate } from "../i18n/I18n";
import { userErrorText, type UserErrorData } from "./errors";

/** Puts a typed error beside the form field it names (`fields` maps the gateway's field names
 * to the form's); false when it names none of them (then show it above the form). */
export function showOnField(
  form: { setFields(fields: { name: any; errors: string[] }[]): void },
  error: UserErrorData,
  fields: Record<string, string>,
  t: Translate,
): boolean {
  const name = error.field != null ? fields[error.field] : undefined;
  if (!name) return false;
  form.setFields([{ name: [name], errors: [userErrorText(error, t)] }]);
  return true;
}
