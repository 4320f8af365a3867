import { usePaged } from "../api-context";
import type { UserListed } from "../types";
import { PagedTable } from "../ui/PagedTable";

/** Users with the names and versions of their credentials; values never leave the server. */
export function UsersPage() {
  const list = usePaged<UserListed>("users", "/admin/v1/users");
  return (
    <section>
      <h1>Users</h1>
      <PagedTable list={list} columns={["User", "Credentials"]} empty="No users with credentials yet.">
        {(u) => (
          <tr key={u.user}>
            <td>{u.user}</td>
            <td>{u.credentials.map((c) => `${c.name} (v${c.version})`).join(", ")}</td>
          </tr>
        )}
      </PagedTable>
    </section>
  );
}
