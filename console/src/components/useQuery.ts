import { useCallback, useEffect, useState } from "react";
import type { Doc } from "../api/doc";
import { useAuth } from "../auth/Auth";

/** Runs a query document as the signed-in member; `reload` runs it again. */
export function useQuery<R, V>(doc: Doc<R, V>, variables: V) {
  const { run } = useAuth();
  const [data, setData] = useState<R | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const key = JSON.stringify(variables);
  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setData(await run(doc, JSON.parse(key) as V));
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }, [run, doc, key]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, loading, reload };
}
