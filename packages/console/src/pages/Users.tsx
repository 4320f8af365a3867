import { usePaged } from "../api-context";
import type { UserListed } from "../types";
import { ErrorAlert } from "../ui/ErrorAlert";
import { Pager } from "../ui/Pager";

/** Users with the names and versions of their credentials; values never leave the server. */
export function UsersPage() {
  const list = usePaged<UserListed>("users", "/admin/v1/users");
  return (
    <section>
      <h1>Users</h1>
      <ErrorAlert error={list.query.error} />
      {list.query.isPending && <p role="status">Loading…</p>}
      <table>
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Credentials</th>
          </tr>
        </thead>
        <tbody>
          {list.items.map((u) => (
            <tr key={u.user}>
              <td>{u.user}</td>
              <td>{u.credentials.map((c) => `${c.name} (v${c.version})`).join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.query.isSuccess && list.items.length === 0 && <p>No users with credentials yet.</p>}
      <Pager {...list} />
    </section>
  );
}
