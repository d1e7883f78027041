import { ApiError } from "../api/client";
import type { Translate } from "../i18n/I18n";

/** A typed error a mutation returned as data. */
export interface UserErrorData {
  __typename: string;
  code?: string;
  message?: string;
  field?: string | null;
  retryAfter?: number;
}

/** What to show for a failed request: the gateway's message for known codes when it has one. */
export function errorText(err: unknown, t: Translate): string {
  if (err instanceof ApiError) {
    if (err.code === "NOT_FOUND" || err.code === "NETWORK" || err.code === "INTERNAL") {
      return `${t(`error.${err.code}`)}${err.code === "NOT_FOUND" ? `: ${err.message}` : ""}`;
    }
    return err.message || t(`error.${err.code}`);
  }
  return t("error.INTERNAL");
}

export function userErrorText(error: UserErrorData, t: Translate): string {
  if (error.__typename === "RateLimitedError" && error.retryAfter != null) {
    return t("signIn.rateLimited", { seconds: error.retryAfter });
  }
  return error.message ?? t("error.INTERNAL");
}
